"""``mff_depth``: depth with a validity mask, after Hu et al. ("Revisiting Single Image Depth
Estimation", WACV 2019; the mask network of "Visualization of CNNs for Monocular Depth
Estimation", ICCV 2019).

A ResNet encoder (:class:`~.resnet_vae.ResNetEncoder`, so torchvision weights load from a local
file), a decoder of Laina-style up-projections from the deepest stage to half the input size, a
multi-scale feature fusion (MFF) module (every encoder stage up-projected to that size,
concatenated, fused by a 5x5 conv), refinement convs on decoder + MFF features, then two heads:
depth in [-1, 1] (tanh, the shared normalisation: -1 = 0 m, 1 = max depth) and mask logits
(> 0: the depth there is trusted). Both outputs are at the input size.

``mask_mode``: ``"head"`` (the mask is a second head on the refined features) or ``"two_stage"``
(a small mask network first; the depth network sees the image times sigmoid(mask), as in the
ICCV paper). Every size is read from the tensors, so the network takes any input size (as
progressive resizing needs); the configured size is what it is trained to and exported at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register_model
from .resnet_vae import RESNET34_BLOCKS, RESNET34_WIDTHS, ResNetEncoder

MASK_MODES = ("head", "two_stage")


@dataclass
class MFFDepthConfig:
    input_height: int = 192  # 4:3 by default (SPEC §5)
    input_width: int = 256
    encoder_blocks: tuple[int, ...] = RESNET34_BLOCKS  # (2, 2, 2, 2): ResNet-18
    encoder_widths: tuple[int, ...] = RESNET34_WIDTHS
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32, 16)  # 1x1 reduction, then one per up-projection
    mff_width: int = 16  # per encoder stage in the fusion module
    refine_width: int = 64
    mask_mode: str = "head"
    mask_widths: tuple[int, ...] = (16, 32, 64)  # two_stage: the mask network's stages

    def __post_init__(self) -> None:
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode {self.mask_mode!r} is not one of {', '.join(MASK_MODES)}")
        if min(self.input_height, self.input_width) < 32:
            raise ValueError(f"input size {self.input_height}x{self.input_width} is below 32 pixels "
                             "(the encoder halves it five times)")
        if len(self.decoder_widths) != len(self.encoder_widths) + 1:
            raise ValueError(f"decoder_widths needs {len(self.encoder_widths) + 1} entries (a reduction and one "
                             f"up-projection per encoder stage), got {len(self.decoder_widths)}")
        for name in ("decoder_widths", "mask_widths"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ValueError(f"{name} must be positive widths, got {values}")
        if min(self.mff_width, self.refine_width) < 1:
            raise ValueError(f"mff_width and refine_width must be positive, got {self.mff_width} and {self.refine_width}")


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class UpProjection(nn.Module):
    """Laina et al.'s up-projection (as Hu et al. use it): bilinear resize to ``size``, then
    conv5x5-BN-ReLU-conv3x3-BN plus a conv5x5-BN shortcut, summed, ReLU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 5, 1, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 5, 1, 2, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, in, *size)
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(branch + self.shortcut(x))


class MaskNetwork(nn.Module):
    """The two-stage form's first network: a small encoder-decoder (stride-2 convs down, bilinear
    up with additive skips) from the image to mask logits at its size."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        chans = (3,) + tuple(widths)
        self.down = nn.ModuleList([nn.Sequential(nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b),
                                                 nn.ReLU(inplace=True)) for a, b in zip(chans[:-1], chans[1:])])
        self.up = nn.ModuleList([_conv_bn_relu(b, a, 3) for a, b in zip(widths[:-1], widths[1:])][::-1])
        self.logits = nn.Conv2d(widths[0], 1, 3, 1, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        skips, x = [], rgb
        for down in self.down:
            x = down(x)
            skips.append(x)
        skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = up(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)) + skip
        x = F.interpolate(x, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        return self.logits(x)  # (B, 1, H, W)


class MFFDepthNetwork(nn.Module):
    """Encoder, up-projection decoder, MFF and refinement; returns the refined features at half the
    input size."""

    def __init__(self, config: MFFDepthConfig):
        super().__init__()
        widths, dec = config.encoder_widths, config.decoder_widths
        self.encoder = ResNetEncoder(3, config.encoder_blocks, widths)
        self.reduce = _conv_bn_relu(widths[-1], dec[0], 1)
        self.decoder = nn.ModuleList([UpProjection(a, b) for a, b in zip(dec[:-1], dec[1:])])
        self.mff_up = nn.ModuleList([UpProjection(w, config.mff_width) for w in widths])
        fused = config.mff_width * len(widths)
        self.mff_fuse = _conv_bn_relu(fused, fused, 5)
        self.refine = nn.Sequential(_conv_bn_relu(dec[-1] + fused, config.refine_width, 5),
                                    _conv_bn_relu(config.refine_width, config.refine_width, 5))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        stages = self.encoder.features(rgb)  # (B, w_i, H/2^(i+2), W/2^(i+2)) each
        half = (rgb.shape[-2] + 1) // 2, (rgb.shape[-1] + 1) // 2
        # decoder: deepest stage up through the sizes of the shallower ones, the last to H/2 x W/2
        targets = [s.shape[-2:] for s in stages[-2::-1]] + [half]
        x = self.reduce(stages[-1])
        for up, size in zip(self.decoder, targets):
            x = up(x, size)  # (B, dec[-1], H/2, W/2) at the end
        fused = self.mff_fuse(torch.cat([up(s, half) for up, s in zip(self.mff_up, stages)], dim=1))
        return self.refine(torch.cat([x, fused], dim=1))  # (B, refine_width, H/2, W/2)


@register_model("mff_depth", MFFDepthConfig)
class MFFDepth(nn.Module):
    """RGB in [-1, 1] -> {"depth": (B, 1, H, W) in [-1, 1], "mask": (B, 1, H, W) logits}."""

    kind = "depth"

    def __init__(self, config: MFFDepthConfig):
        super().__init__()
        self.config = config
        self.mask_net = MaskNetwork(config.mask_widths) if config.mask_mode == "two_stage" else None
        self.network = MFFDepthNetwork(config)
        self.depth_head = nn.Conv2d(config.refine_width, 1, 5, 1, 2)
        self.mask_head = nn.Conv2d(config.refine_width, 1, 3, 1, 1) if self.mask_net is None else None

    @property
    def encoder(self) -> ResNetEncoder:
        """The ResNet encoder (where ``train.encoder_weights`` loads torchvision weights)."""
        return self.network.encoder

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        size = rgb.shape[-2:]
        if self.mask_net is not None:
            mask = self.mask_net(rgb)  # (B, 1, H, W) logits
            features = self.network(rgb * torch.sigmoid(mask))
        else:
            features = self.network(rgb)
            mask = F.interpolate(self.mask_head(features), size=size, mode="bilinear", align_corners=False)
        depth = F.interpolate(self.depth_head(features), size=size, mode="bilinear", align_corners=False)
        return {"depth": torch.tanh(depth), "mask": mask}
