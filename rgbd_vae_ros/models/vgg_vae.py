"""``vgg_vae``: a comparison VAE built from VGG blocks (two 3x3 convs per stage, max-pool down,
nearest upsample up)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import VAE, GaussianHead, VAEConfig, check_divisible
from .layers import UpsampleDecoder, conv_bn_act
from .registry import register_model


@dataclass
class VGGVAEConfig(VAEConfig):
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    convs_per_stage: int = 2
    negative_slope: float = 0.2


@register_model("vgg_vae", VGGVAEConfig)
class VGGVAE(VAE):
    def __init__(self, config: VGGVAEConfig):
        super().__init__(config)
        widths, slope, convs = config.widths, config.negative_slope, config.convs_per_stage
        self.start = check_divisible(config.image_size, len(widths))
        layers: list[nn.Module] = []
        channels = config.in_channels
        for width in widths:
            for _ in range(convs):
                layers.append(conv_bn_act(channels, width, 3, 1, 1, slope))
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.encoder = nn.Sequential(*layers)
        self.head = GaussianHead(widths[-1] * self.start ** 2, config.latent_dim)
        self.decoder = UpsampleDecoder(config.latent_dim, widths[::-1], self.start, config.out_channels,
                                       convs_per_stage=convs, negative_slope=slope)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
