"""``resnet_vae``: ResNet-34 encoder (written here, torchvision's parameter names so its weights
load from a local file; ``mff_depth`` shares it), decoder of residual blocks and transposed convolutions, tanh."""

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


class ResNetEncoder(nn.Module):
    """torchvision's ResNet (basic blocks) up to layer4, without the pooling and classifier:
    ``blocks`` per stage and stage ``widths`` are ResNet-34's by default, (2, 2, 2, 2) is
    ResNet-18's; other values give a smaller network of the same form (the stem has widths[0])."""

    def __init__(self, in_channels: int, blocks: tuple[int, ...] = RESNET34_BLOCKS,
                 widths: tuple[int, ...] = RESNET34_WIDTHS):
        super().__init__()
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1 or min(widths) < 1:
            raise ValueError(f"encoder blocks {tuple(blocks)} and widths {tuple(widths)} need one positive "
                             "entry per stage each")
        self.blocks, self.widths = tuple(blocks), tuple(widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(channels, width, stride)] + [BasicBlock(width, width) for _ in range(count - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
            channels = width

    @property
    def layers(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.blocks))]

    def stages(self) -> list[list[nn.Module]]:
        """Stage 1 = stem + layer1, stage 2 = layer2 (the freezable ones), then the others."""
        return [[self.conv1, self.bn1, self.layer1]] + [[layer] for layer in self.layers[1:]]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each stage: (B, widths[i], H/2^(i+2), W/2^(i+2))."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, widths[0], H/4, W/4)
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs

    def forward(self, x):
        return self.features(x)[-1]  # (B, widths[-1], H/32, W/32) with four stages


@register_model("resnet_vae", ResNetVAEConfig)
class ResNetVAE(VAE):
    def __init__(self, config: ResNetVAEConfig):
        super().__init__(config)
        self.start = check_divisible(config.image_size, 5)
        widths = config.decoder_widths
        if len(widths) != 6:
            raise ValueError(f"decoder_widths needs 6 entries (5 upsampling stages), got {len(widths)}")
        self.encoder = ResNetEncoder(config.in_channels)
        self.head = GaussianHead(RESNET34_WIDTHS[-1] * self.start ** 2, config.latent_dim)
        self.fc = nn.Linear(config.latent_dim, widths[0] * self.start ** 2)
        up: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            up += [BasicBlock(a, a), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*up, nn.Conv2d(widths[-1], config.out_channels, 3, 1, 1))  # before the tanh
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

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.config.decoder_widths[0], self.start, self.start)
        return self.decoder(x)


def _resnet_name(encoder: ResNetEncoder) -> str:
    names = {RESNET34_BLOCKS: "ResNet-34", (2, 2, 2, 2): "ResNet-18"}
    if encoder.widths == RESNET34_WIDTHS and encoder.blocks in names:
        return names[encoder.blocks]
    return f"ResNet (blocks {encoder.blocks}, widths {encoder.widths})"


def load_torchvision_resnet(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy a torchvision ResNet state dict (a local ``.pth``) into ``model.encoder``, a
    :class:`ResNetEncoder` (``resnet_vae``, ``mff_depth``): ResNet-34's for the default encoder,
    ResNet-18's for blocks (2, 2, 2, 2).

    With 4 input channels the depth filter starts as the mean of the RGB filters.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, ResNetEncoder):
        raise ModelError(f"a {getattr(model, 'model_name', type(model).__name__)} model has no ResNet encoder "
                         "to load torchvision weights into")
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
    in_channels = encoder.conv1.in_channels
    if conv1 is not None and conv1.shape[1] == 3 and in_channels == 4:
        state["conv1.weight"] = torch.cat([conv1, conv1.mean(dim=1, keepdim=True)], dim=1)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ModelError(f"{str(path)!r} is not a {_resnet_name(encoder)} state dict: it lacks {missing[0]!r}")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ModelError(f"{str(path)!r}: {wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, "
                         f"expected {tuple(own[wrong[0]].shape)}")
    encoder.load_state_dict({k: state[k] for k in own})


load_torchvision_resnet34 = load_torchvision_resnet  # the name resnet_vae's callers know
