"""``unet_depth``: U-Net depth estimator, about 10 M parameters, with optional multi-head
self-attention in the bottleneck (``scaled_dot_product_attention``).

RGB in [-1, 1] -> depth in [-1, 1] (the shared normalisation: -1 = 0 m, 1 = max depth).

Two heads (``head``):

- ``tanh``: each pixel's depth is tanh of the last convolution;
- ``log``: each pixel's depth is exp(its log depth from the last convolution + one log scale per image
  from the pooled bottleneck), at most max depth. Across rooms a depth map is mostly one scale, which a
  small model learns far better as one number per image than pixel by pixel (docs/synthetic_data.md).
  It starts at :data:`LOG_HEAD_START` of max depth everywhere; train it with ``loss.w_log_depth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .base import check_divisible
from .registry import register_model

HEADS = ("tanh", "log")
LOG_HEAD_START = 0.25  # the log head's depth before training, as a share of max depth (2.5 m of 10 m)


@dataclass
class UNetDepthConfig:
    input_height: int = 240
    input_width: int = 320
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    attention: bool = True
    attention_heads: int = 8
    head: str = "tanh"  # "tanh" or "log" (the module docstring)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} is not one of {', '.join(HEADS)}")
        for name in ("input_height", "input_width"):
            check_divisible(getattr(self, name), len(self.widths) - 1, name)
        if self.attention and self.widths[-1] % self.attention_heads:
            raise ValueError(f"bottleneck width {self.widths[-1]} is not a multiple of "
                             f"attention_heads {self.attention_heads}")


def double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


class BottleneckAttention(nn.Module):
    """Pre-norm multi-head self-attention over the h*w bottleneck positions, residual."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(1, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (t.transpose(-1, -2) for t in qkv.unbind(1))  # (B, heads, h*w, c/heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


@register_model("unet_depth", UNetDepthConfig)
class UNetDepth(nn.Module):
    kind = "depth"

    def __init__(self, config: UNetDepthConfig):
        super().__init__()
        self.config = config
        w = config.widths
        self.down = nn.ModuleList([double_conv(3, w[0])] + [double_conv(a, b) for a, b in zip(w[:-1], w[1:])])
        self.attention = BottleneckAttention(w[-1], config.attention_heads) if config.attention else nn.Identity()
        self.reduce = nn.ModuleList([nn.Conv2d(b, a, 3, 1, 1) for a, b in zip(w[:-1], w[1:])][::-1])
        self.up = nn.ModuleList([double_conv(2 * a, a) for a in w[:-1]][::-1])
        self.output = nn.Conv2d(w[0], 1, 1)
        if config.head == "log":  # one log scale per image; the per-pixel log depth starts at 0
            self.scale = nn.Linear(w[-1], 1)
            nn.init.zeros_(self.scale.weight)
            nn.init.constant_(self.scale.bias, math.log(LOG_HEAD_START))
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        x = rgb  # (B, 3, H, W)
        for index, block in enumerate(self.down):
            x = block(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.attention(skips.pop())  # (B, w[-1], H/16, W/16)
        log_scale = self.scale(x.mean(dim=(2, 3)))[:, :, None, None] if self.config.head == "log" else None
        for reduce, up in zip(self.reduce, self.up):
            x = reduce(F.interpolate(x, scale_factor=2.0, mode="nearest"))
            x = up(torch.cat([x, skips.pop()], dim=1))
        if log_scale is None:
            return {"depth": torch.tanh(self.output(x))}  # (B, 1, H, W)
        unit = torch.exp(self.output(x) + log_scale).clamp(max=1.0)  # depth / max depth, in (0, 1]
        return {"depth": 2 * unit - 1}
