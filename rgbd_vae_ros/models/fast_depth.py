"""``fast_depth``: depth for a CPU in real time, after FastDepth (Wofk et al., ICRA 2019).

A MobileNetV2-style encoder (inverted residual blocks: 1x1 expansion, depthwise 3x3, linear 1x1
projection; BN and ReLU6) down to 1/32 of the input, and an NNConv5-style decoder: per stage a
depthwise 5x5 and a pointwise conv (BN + ReLU each), nearest x2 upsampling, then the encoder's
feature map of that scale added (additive skips cost no channels, unlike concatenation). A 1x1
conv makes the depth; tanh keeps it in the shared [-1, 1] range (-1 = 0 m, 1 = max depth).

At its default 192x256 (4:3) input it costs about 0.58 GFLOP (2 per multiply-add), against 39 for
``unet_depth`` at 240x320.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .base import check_divisible
from .registry import register_model

# MobileNetV2's encoder (Sandler et al. 2018, table 2) without its final 1x1 to 1280 channels:
# (expansion t, output channels c, repeats n, first stride s)
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
STRIDE_STAGES = 5  # the encoder ends at 1/32 of the input


@dataclass
class FastDepthConfig:
    """``width_multiplier`` scales every encoder and decoder width (rounded to multiples of 8, as in
    MobileNetV2); ``final_width`` is the decoder's width at full resolution before the depth conv."""

    input_height: int = 192
    input_width: int = 256
    width_multiplier: float = 1.0
    final_width: int = 16

    def __post_init__(self) -> None:
        for name in ("input_height", "input_width"):
            check_divisible(getattr(self, name), STRIDE_STAGES, name)
        if not self.width_multiplier > 0:
            raise ValueError(f"width_multiplier must be > 0, got {self.width_multiplier}")
        if self.final_width <= 0:
            raise ValueError(f"final_width must be positive, got {self.final_width}")


def scaled_width(channels: int, multiplier: float, divisor: int = 8) -> int:
    """MobileNetV2's rounding: the nearest multiple of ``divisor``, never below 90 % of the scaled width."""
    scaled = channels * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion, depthwise 3x3 (carries the stride), linear 1x1 projection; residual when the
    shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_ch * expansion
        layers = [conv_bn_relu6(in_ch, hidden)] if expansion != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def nnconv5(in_ch: int, out_ch: int) -> nn.Sequential:
    """NNConv5's convolutions: depthwise 5x5 then pointwise, each with BN + ReLU (the x2 upsampling follows)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 5, 1, 2, groups=in_ch, bias=False), nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


@register_model("fast_depth", FastDepthConfig)
class FastDepth(nn.Module):
    kind = "depth"

    def __init__(self, config: FastDepthConfig):
        super().__init__()
        self.config = config
        m = config.width_multiplier
        channels = scaled_width(STEM_CHANNELS, m)
        stages: list[list[nn.Module]] = [[conv_bn_relu6(3, channels, 3, 2)]]  # one list per output scale
        for expansion, width, repeats, stride in INVERTED_RESIDUAL_SETTING:
            out_ch = scaled_width(width, m)
            for index in range(repeats):
                block_stride = stride if index == 0 else 1
                if block_stride == 2:
                    stages.append([])
                stages[-1].append(InvertedResidual(channels, out_ch, block_stride, expansion))
                channels = out_ch
        self.encoder = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)  # 1/2 ... 1/32
        # the decoder returns to each scale at the width of the encoder's map there, so the skip adds
        skip_widths = [self._out_channels(stage) for stage in self.encoder[:-1]][::-1]  # 1/16 ... 1/2
        widths = [channels, *skip_widths, config.final_width]
        self.decoder = nn.ModuleList(nnconv5(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Conv2d(config.final_width, 1, 1)
        self._init_weights()

    @staticmethod
    def _out_channels(stage: nn.Sequential) -> int:
        return [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features

    def _init_weights(self) -> None:
        # MobileNetV2's initialisation for the convs that BN follows; the depth conv keeps torch's
        # default, as He's fan-out gain (std 1.4 for one output) would start tanh saturated
        for module in [*self.encoder.modules(), *self.decoder.modules()]:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        x = rgb  # (B, 3, H, W)
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)  # (B, c_i, H / 2**(i+1), W / 2**(i+1))
        skips.pop()  # the 1/32 map is x itself
        for stage in self.decoder:
            x = F.interpolate(stage(x), scale_factor=2.0, mode="nearest")
            if skips:
                x = x + skips.pop()
        return {"depth": torch.tanh(self.output(x))}  # (B, 1, H, W)
