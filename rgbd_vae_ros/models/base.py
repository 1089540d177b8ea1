"""What every VAE shares: the channel modes, the Gaussian latent head, sampling and the
named-dict ``forward``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# mode -> (input channels, output channels); channel order RGB, then depth, then (out only) the decoded
# depth's validity: +1 where the frame had a depth reading, -1 where it had none (a hole), so that a
# decoder never publishes depth it was not trained to make (SPEC §4.2)
MODES: dict[str, tuple[int, int]] = {"rgbd": (4, 5), "rgb": (3, 3), "rgb2rgbd": (3, 5)}
LOGVAR_LIMITS = (-30.0, 20.0)  # keeps exp(logvar) finite in fp16 and fp32


@dataclass
class VAEConfig:
    """``mode``: 'rgbd' (RGB-D in, RGB-D and depth validity out), 'rgb' (RGB in and out) or 'rgb2rgbd'
    (RGB in, RGB-D and depth validity out)."""

    mode: str = "rgbd"
    image_size: int = 128
    latent_dim: int = 400

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.image_size <= 0 or self.latent_dim <= 0:
            raise ValueError(f"image_size and latent_dim must be positive, got {self.image_size} and {self.latent_dim}")

    @property
    def in_channels(self) -> int:
        return MODES[self.mode][0]

    @property
    def out_channels(self) -> int:
        return MODES[self.mode][1]


def check_divisible(size: int, stages: int, what: str = "image_size") -> int:
    """The spatial size after ``stages`` halvings; an error when ``size`` does not halve evenly."""
    factor = 2 ** stages
    if size % factor:
        raise ValueError(f"{what} {size} is not a multiple of {factor} ({stages} stride-2 stages)")
    return size // factor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


# The training noise's quantiser range, in standard deviations of mu: 5.15, a normal's 0.5th to 99.5th
# percentile. rgbd_vae_ros.latent now fits the 0.1th to 99.9th (6.18 for a normal); the q4 noise of
# tiny_vae was measured with 5.15 and is kept.
QUANTISER_RANGE_STD = 5.15


def quantiser_noise(mu: torch.Tensor, bits: int) -> torch.Tensor:
    """Uniform noise of the rounding error of a ``bits``-bit per-dimension quantiser of ``mu`` (B, D):
    a step of the quantiser's range, estimated from the batch's spread of each dimension, / 2**bits."""
    step = QUANTISER_RANGE_STD * mu.detach().std(dim=0, keepdim=True) / (1 << bits)  # (1, D)
    return (torch.rand_like(mu) - 0.5) * step


class GaussianHead(nn.Module):
    """Flattened features -> (mu, logvar), two fully connected layers."""

    def __init__(self, features: int, latent_dim: int):
        super().__init__()
        self.fc_mu = nn.Linear(features, latent_dim)
        self.fc_logvar = nn.Linear(features, latent_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = features.flatten(1)  # (B, C*h*w)
        return self.fc_mu(flat), self.fc_logvar(flat).clamp(*LOGVAR_LIMITS)


class VAE(nn.Module):
    """Subclasses define ``encode(x) -> (mu, logvar)`` and ``decode_logits(z)``, the decoded values
    before the tanh; ``decode(z)`` is their tanh, in [-1, 1].

    ``forward`` samples z while training and uses mu in eval mode, so inference is deterministic.
    It also returns ``recon_logits``: a loss on a channel that saturates (the decoded depth's
    validity) takes its gradient from them, where the tanh's would be 0 (tanh rounds to ±1 beyond
    about ±9 in float32, ±4.5 in float16 and ±3.5 in bfloat16).
    """

    kind = "vae"
    # > 0 while training: the sampled code also carries the rounding error of a quantiser of this
    # many bits, so the decoder learns to decode the codes the latent message sends (SPEC §4.3)
    train_quantiser_bits: int = 0

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decode_logits(z))  # (B, out, H, W) in [-1, 1]

    def forward(self, x: torch.Tensor, *, decode: int | None = None) -> dict[str, torch.Tensor]:
        """``decode``: decode only the first ``decode`` codes (``recon`` has that many); the rest are
        only encoded, as the place term's views need (their decoding would be most of a step's cost)."""
        mu, logvar = self.encode(x)  # (B, latent) each
        z = reparameterize(mu, logvar) if self.training else mu
        if self.training and self.train_quantiser_bits and len(mu) > 1:
            z = z + quantiser_noise(mu, self.train_quantiser_bits)
        return self.outputs(self.decode_logits(z if decode is None else z[:decode]), mu, logvar)

    @staticmethod
    def outputs(logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
        """What ``forward`` returns: the decoded values (their tanh) and before the tanh, and the code."""
        return {"recon": torch.tanh(logits), "recon_logits": logits, "mu": mu, "logvar": logvar}
