"""``resnet_vae``: ResNet-34 encoder (written here, torchvision's parameter names so its weights
load from a local file), decoder of residual blocks and transposed convolutions, tanh."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from .base import VAE, GaussianHead, VAEConfig, check_divisible
from .layers import BasicBlock
from .registry import ModelError, register_model

RESNET34_BLOCKS = (3, 4, 6, 3)
RESNET34_WIDTHS = (64, 128, 256, 512)


@dataclass
class ResNetVAEConfig(VAEConfig):
    decoder_widths: tuple[int, ...] = (512, 256, 128, 64, 32, 32)  # 5 x2 stages: 4 -> 128
    freeze_stages: int = 0  # 1: stem + layer1 frozen; 2: also layer2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.freeze_stages not in (0, 1, 2):
            raise ValueError(f"freeze_stages must be 0, 1 or 2, got {self.freeze_stages}")


class ResNet34Encoder(nn.Module):
    """torchvision's resnet34 up to layer4, without the pooling and classifier."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for index, (blocks, width) in enumerate(zip(RESNET34_BLOCKS, RESNET34_WIDTHS)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(channels, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
            channels = width

    def stages(self) -> list[list[nn.Module]]:
        """Stage 1 = stem + layer1, stage 2 = layer2 (the freezable ones), then layer3, layer4."""
        return [[self.conv1, self.bn1, self.layer1], [self.layer2], [self.layer3], [self.layer4]]

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H/32, W/32)


@register_model("resnet_vae", ResNetVAEConfig)
class ResNetVAE(VAE):
    def __init__(self, config: ResNetVAEConfig):
        super().__init__(config)
        self.start = check_divisible(config.image_size, 5)
        widths = config.decoder_widths
        if len(widths) != 6:
            raise ValueError(f"decoder_widths needs 6 entries (5 upsampling stages), got {len(widths)}")
        self.encoder = ResNet34Encoder(config.in_channels)
        self.head = GaussianHead(RESNET34_WIDTHS[-1] * self.start ** 2, config.latent_dim)
        self.fc = nn.Linear(config.latent_dim, widths[0] * self.start ** 2)
        up: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            up += [BasicBlock(a, a), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*up, nn.Conv2d(widths[-1], config.out_channels, 3, 1, 1), nn.Tanh())
        self._frozen = [m for stage in self.encoder.stages()[:config.freeze_stages] for m in stage]
        for module in self._frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen:  # frozen stages keep their BatchNorm statistics too
            module.eval()
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.config.decoder_widths[0], self.start, self.start)
        return self.decoder(x)


def load_torchvision_resnet34(model: ResNetVAE, path: str | os.PathLike) -> None:
    """Copy a torchvision ``resnet34`` state dict (a local ``.pth``) into the encoder.

    With 4 input channels the depth filter starts as the mean of the RGB filters.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"encoder weights file {str(path)!r} does not exist") from None
    except Exception as exc:
        raise ModelError(f"{str(path)!r} is not a torchvision weights file ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{str(path)!r} holds no state dict")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    conv1 = state.get("conv1.weight")
    in_channels = model.config.in_channels
    if conv1 is not None and conv1.shape[1] == 3 and in_channels == 4:
        state["conv1.weight"] = torch.cat([conv1, conv1.mean(dim=1, keepdim=True)], dim=1)
    own = model.encoder.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ModelError(f"{str(path)!r} is not a ResNet-34 state dict: it lacks {missing[0]!r}")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ModelError(f"{str(path)!r}: {wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, "
                         f"expected {tuple(own[wrong[0]].shape)}")
    model.encoder.load_state_dict({k: state[k] for k in own})
