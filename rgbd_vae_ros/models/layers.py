"""Building blocks shared by the models."""

from __future__ import annotations

from torch import nn


def conv_bn_act(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int,
                negative_slope: float = 0.2) -> nn.Sequential:
    """Conv (no bias: BN follows) + BatchNorm + LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(negative_slope, inplace=True),
    )


class UpsampleDecoder(nn.Module):
    """Latent -> FC -> (widths[0], start, start) -> per stage: nearest x2 upsample and
    ``convs_per_stage`` 3x3 convs with BN + LeakyReLU; the very last conv maps to ``out_channels``
    with neither: values before the VAE's tanh. Stage i ends at widths[i + 1] (the last stage at
    ``out_channels``)."""

    def __init__(self, latent_dim: int, widths: tuple[int, ...], start: int, out_channels: int,
                 convs_per_stage: int = 1, negative_slope: float = 0.2):
        super().__init__()
        self.widths, self.start = tuple(widths), start
        self.fc = nn.Linear(latent_dim, widths[0] * start * start)
        layers: list[nn.Module] = []
        for stage in range(len(widths)):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            last_stage = stage == len(widths) - 1
            target = widths[-1] if last_stage else widths[stage + 1]
            channels = widths[stage]
            for conv in range(convs_per_stage):
                if last_stage and conv == convs_per_stage - 1:
                    layers.append(nn.Conv2d(channels, out_channels, 3, 1, 1))
                else:
                    layers.append(conv_bn_act(channels, target, 3, 1, 1, negative_slope))
                channels = target
        self.layers = nn.Sequential(*layers)

    def forward(self, z):
        x = self.fc(z).view(-1, self.widths[0], self.start, self.start)  # (B, C0, s, s)
        return self.layers(x)  # (B, out, s * 2**stages, s * 2**stages), before the tanh


class BasicBlock(nn.Module):
    """The ResNet basic block; attribute names follow torchvision so its weights load."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
