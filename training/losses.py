"""Training losses (SPEC §5). Each returns a dict of named terms with the total under ``loss``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size), sums to 1


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
             sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian window, K1 = 0.01, K2 = 0.03) of (B, C, H, W)
    images, reflect-padded so the map has the input's size."""
    channels = x.shape[1]
    size = min(window_size, x.shape[-1], x.shape[-2]) | 1  # odd, no larger than the image
    window = gaussian_window(size, sigma).to(x)[None, None].expand(channels, 1, size, size)
    pad = size // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        padded = F.pad(t, (pad, pad, pad, pad), mode="reflect") if pad else t
        return F.conv2d(padded, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over the latent, per sample (B,)."""
    return -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1)


@dataclass
class ELBOLoss:
    """Negative ELBO: squared error summed over pixels (Gaussian likelihood, invalid depth masked)
    + beta * KL, per sample, averaged over the batch. beta rises linearly over ``warmup_steps``."""

    beta: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.beta < 0 or self.warmup_steps < 0:
            raise ValueError(f"beta and warmup_steps must be 0 or more, got {self.beta} and {self.warmup_steps}")

    def beta_at(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, step / self.warmup_steps)

    def __call__(self, out: dict, target: torch.Tensor, valid: torch.Tensor | None, step: int) -> dict:
        squared = (out["recon"].float() - target) ** 2  # (B, C, H, W)
        if valid is not None:
            squared = squared * valid
        recon = squared.flatten(1).sum(dim=1).mean()
        kl = kl_divergence(out["mu"].float(), out["logvar"].float()).mean()
        beta = self.beta_at(step)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "beta": torch.tensor(beta)}


@dataclass
class DepthLoss:
    """w_l1 * L1 + w_gradient * image-gradient L1 + w_ssim * (1 - SSIM) / 2, over valid pixels,
    on depth scaled to [0, 1] (0 m .. max depth)."""

    w_l1: float = 0.1
    w_gradient: float = 1.0
    w_ssim: float = 1.0

    def __post_init__(self) -> None:
        weights = (self.w_l1, self.w_gradient, self.w_ssim)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"loss weights must be 0 or more and not all 0, got {weights}")

    def __call__(self, pred_unit: torch.Tensor, target_unit: torch.Tensor, valid: torch.Tensor) -> dict:
        pred, target = (pred_unit.float() + 1) / 2, (target_unit + 1) / 2  # (B, 1, H, W) in [0, 1]
        valid = valid.to(pred.dtype)
        count = valid.sum().clamp_min(1.0)
        l1 = (torch.abs(pred - target) * valid).sum() / count
        gradient = pred.new_zeros(())
        for dim in (-1, -2):
            both = valid.narrow(dim, 1, valid.shape[dim] - 1) * valid.narrow(dim, 0, valid.shape[dim] - 1)
            diff = torch.abs(pred.diff(dim=dim) - target.diff(dim=dim)) * both
            gradient = gradient + diff.sum() / both.sum().clamp_min(1.0)
        # holes take the prediction's value so they neither reward nor punish the local statistics
        filled = torch.where(valid.bool(), target, pred.detach())
        ssim = (ssim_map(pred, filled) * valid).sum() / count
        structural = (1 - ssim) / 2
        loss = self.w_l1 * l1 + self.w_gradient * gradient + self.w_ssim * structural
        return {"loss": loss, "l1": l1, "gradient": gradient, "ssim": structural}
