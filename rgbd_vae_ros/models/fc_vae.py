"""``fc_vae`` (fully connected VAE) and ``cvae`` (the same, conditioned on a class label by a
one-hot vector appended to the encoder input and to the latent) — the MNIST comparison models."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .base import VAE, GaussianHead, VAEConfig, reparameterize
from .registry import register_model


@dataclass
class FCVAEConfig(VAEConfig):
    mode: str = "rgb"
    image_size: int = 28
    latent_dim: int = 20
    hidden: tuple[int, ...] = (512, 256)
    num_classes: int = 0  # > 0: conditional on a label in [0, num_classes)


@dataclass
class CVAEConfig(FCVAEConfig):
    num_classes: int = 10


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers)


@register_model("fc_vae", FCVAEConfig)
class FCVAE(VAE):
    def __init__(self, config: FCVAEConfig):
        super().__init__(config)
        c = config
        self.pixels_in = c.in_channels * c.image_size ** 2
        self.encoder = _mlp([self.pixels_in + c.num_classes, *c.hidden])
        self.head = GaussianHead(c.hidden[-1], c.latent_dim)
        self.decoder = _mlp([c.latent_dim + c.num_classes, *c.hidden[::-1]])
        self.output = nn.Linear(c.hidden[0], c.out_channels * c.image_size ** 2)

    def _condition(self, x: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        if self.config.num_classes == 0:
            return x
        if label is None:
            raise ValueError("this VAE is conditional (num_classes > 0): forward needs the class label")
        return torch.cat([x, F.one_hot(label.long(), self.config.num_classes).to(x.dtype)], dim=1)

    def encode(self, x: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(self._condition(x.flatten(1), label)))  # (B, C*H*W) -> (B, latent)

    def decode_logits(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        flat = self.output(self.decoder(self._condition(z, label)))
        return flat.view(-1, c.out_channels, c.image_size, c.image_size)  # (B, out, H, W), before the tanh

    def decode(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.decode_logits(z, label))

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x, label)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.outputs(self.decode_logits(z, label), mu, logvar)


register_model("cvae", CVAEConfig)(FCVAE)
