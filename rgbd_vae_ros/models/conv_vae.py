"""``conv_vae``, the proposed RGB-D VAE (SPEC §5), and ``rgb2rgbd``, the same network with RGB in
and RGB-D out.

Encoder: 5 x (conv 4x4 stride 2 pad 1, BN, LeakyReLU 0.2) over widths 64-128-256-512-512, then
FC -> mu, log sigma^2 (latent 400). Decoder: FC -> 512x4x4, 5 x (nearest x2 upsample, conv 3x3),
BN + LeakyReLU on all but the last, tanh. 128x128 in and out, values in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import VAE, GaussianHead, VAEConfig, check_divisible
from .layers import UpsampleDecoder, conv_bn_act
from .registry import register_model


@dataclass
class ConvVAEConfig(VAEConfig):
    """``linear_path``: a linear map of the whole input is added to μ, and one of the code to every
    output value (before the tanh): a linear code (PCA) is one the network can take, and the
    convolutions learn what it cannot, on top of it."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    negative_slope: float = 0.2
    linear_path: bool = False


@dataclass
class RGB2RGBDConfig(ConvVAEConfig):
    mode: str = "rgb2rgbd"


@register_model("conv_vae", ConvVAEConfig)
class ConvVAE(VAE):
    def __init__(self, config: ConvVAEConfig):
        super().__init__(config)
        widths, slope = config.widths, config.negative_slope
        self.start = check_divisible(config.image_size, len(widths))
        channels = (config.in_channels, *widths)
        self.encoder = nn.Sequential(*(conv_bn_act(channels[i], channels[i + 1], 4, 2, 1, slope)
                                       for i in range(len(widths))))
        self.head = GaussianHead(widths[-1] * self.start ** 2, config.latent_dim)
        self.decoder = UpsampleDecoder(config.latent_dim, widths[::-1], self.start, config.out_channels,
                                       convs_per_stage=1, negative_slope=slope)
        pixels = config.image_size ** 2
        self.linear_in = nn.Linear(config.in_channels * pixels, config.latent_dim) if config.linear_path else None
        self.linear = nn.Linear(config.latent_dim, config.out_channels * pixels) if config.linear_path else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.encoder(x))  # (B, 512, 4, 4) -> (B, latent) x 2
        if self.linear_in is not None:
            mu = mu + self.linear_in(x.flatten(1))
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        convolved = self.decoder(z)  # (B, out, H, W), before the tanh
        if self.linear is None:
            return convolved
        return convolved + self.linear(z).view_as(convolved)


register_model("rgb2rgbd", RGB2RGBDConfig)(ConvVAE)
