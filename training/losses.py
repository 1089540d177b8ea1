"""Training losses (SPEC §5). Each returns a dict of named terms with the total under ``loss``."""

from __future__ import annotations

import math
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
    + beta * KL, per sample, averaged over the batch. beta rises linearly over ``warmup_steps``.

    ``depth_weight`` scales the depth channel's squared error against each RGB channel's (a
    Gaussian of variance 1 / depth_weight for depth): with one depth channel beside three RGB
    channels, depth otherwise gets a quarter of the reconstruction, and RGB texture takes the code.
    ``free_bits`` (nats per latent dimension, batch-averaged) is a floor under each dimension's KL:
    a dimension below it is not pushed further towards the prior (Kingma et al. 2016).
    ``quantiser_bits`` > 0: while training, the decoded code also carries the rounding error of a
    quantiser of that many bits per dimension (the latent message's q8 / q4 codes), so the decoder
    learns to decode what is sent, not only μ (:func:`rgbd_vae_ros.models.base.quantiser_noise`).
    A model that decodes depth also decodes its validity (a fifth channel, +1: the frame had a reading
    there): ``validity_weight`` times its binary cross-entropy against the depth's validity, summed over
    pixels like the squared error (``recon_validity``), so the runtime can drop decoded depth where the
    frame had none (SPEC §4.2). It is computed from the channel's value before the tanh (``out``'s
    ``recon_logits``, which every VAE's forward returns and such an ``out`` must have), so a
    confidently wrong pixel keeps its gradient where the tanh has saturated."""

    beta: float = 1.0
    warmup_steps: int = 0
    depth_weight: float = 1.0
    free_bits: float = 0.0
    quantiser_bits: int = 0
    # > 0: plus this weight times an InfoNCE term over μ of two views of each of several rooms
    # (train.place_data, :mod:`.train.place_pairs`), at this temperature
    place_weight: float = 0.0
    place_temperature: float = 0.1
    validity_weight: float = 0.1

    def __post_init__(self) -> None:
        if not self.validity_weight > 0:
            raise ValueError(f"validity_weight must be positive, got {self.validity_weight}")
        if self.place_weight < 0 or not self.place_temperature > 0:
            raise ValueError(f"place_weight must be 0 or more and place_temperature positive, got "
                             f"{self.place_weight} and {self.place_temperature}")
        if self.beta < 0 or self.warmup_steps < 0:
            raise ValueError(f"beta and warmup_steps must be 0 or more, got {self.beta} and {self.warmup_steps}")
        if not 0 <= self.quantiser_bits <= 16:
            raise ValueError(f"quantiser_bits must be 0 (off) to 16, got {self.quantiser_bits}")
        if not self.depth_weight > 0 or self.free_bits < 0:
            raise ValueError(f"depth_weight must be positive and free_bits 0 or more, got {self.depth_weight} "
                             f"and {self.free_bits}")

    def beta_at(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, step / self.warmup_steps)

    def __call__(self, out: dict, target: torch.Tensor, valid: torch.Tensor | None, step: int) -> dict:
        recon_out = out["recon"].float()  # (B, C_out, H, W): the target's channels, then with depth its validity
        squared = (recon_out[:, :target.shape[1]] - target) ** 2  # (B, C, H, W)
        if valid is not None:
            squared = squared * valid
        terms = {}
        if squared.shape[1] == 4:  # RGB-D: RGB then depth, and the decoded depth's validity
            rgb = squared[:, :3].flatten(1).sum(dim=1).mean()
            depth = squared[:, 3:].flatten(1).sum(dim=1).mean()
            recon = rgb + self.depth_weight * depth
            terms = {"recon_rgb": rgb, "recon_depth": depth}
            if recon_out.shape[1] == 5:
                readings = valid[:, 3:4] if valid is not None else torch.ones_like(target[:, 3:4], dtype=torch.bool)
                if "recon_logits" not in out:  # from the tanh's values its gradient would vanish where it saturates
                    raise ValueError("a VAE that decodes depth validity must return 'recon_logits' (its decoded "
                                     "values before the tanh) beside 'recon', as VAE.forward does")
                logits = out["recon_logits"][:, 4:5].float()
                validity = validity_cross_entropy(logits, readings).flatten(1).sum(dim=1).mean()
                recon = recon + self.validity_weight * validity
                terms["recon_validity"] = validity
        else:
            recon = squared.flatten(1).sum(dim=1).mean()
        mu, logvar = out["mu"].float(), out["logvar"].float()
        kl = kl_divergence(mu, logvar).mean()
        penalty = kl
        if self.free_bits > 0:  # per dimension, averaged over the batch, then floored
            per_dim = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).mean(dim=0)  # (latent,)
            penalty = per_dim.clamp_min(self.free_bits).sum()
        beta = self.beta_at(step)
        return {"loss": recon + beta * penalty, "recon": recon, "kl": kl, "beta": torch.tensor(beta), **terms}


def validity_cross_entropy(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-pixel binary cross-entropy of a decoded validity channel against the bool ``valid``, from
    its values before the tanh: the channel v = tanh(x) says probability (v + 1) / 2 = sigmoid(2x).
    From x rather than from v, its gradient 2 (sigmoid(2x) - valid) does not vanish where tanh has
    rounded to ±1 (beyond |x| ≈ 9 in float32, 4.5 in float16 and 3.5 in bfloat16 under autocast;
    the form before, from v clamped to 1e-6 of the ends, lost it beyond |x| ≈ 6.9 in float32)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(2 * logits.float(), valid.float(), reduction="none")


def info_nce(codes: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE (Oord et al. 2018; the symmetric form of SimCLR) over ``codes`` (2N, D): rows i and
    N + i are two views of one place. Each row's cosine to its partner, against its cosines to
    every other row, divided by ``temperature``, in a cross-entropy averaged over the rows."""
    count = len(codes) // 2
    if len(codes) != 2 * count or count < 2:
        raise ValueError(f"info_nce needs an even number of codes, at least 4, got {len(codes)}")
    unit = F.normalize(codes.float(), dim=1)
    logits = unit @ unit.T / temperature
    logits = logits.masked_fill(torch.eye(len(codes), dtype=torch.bool, device=codes.device), float("-inf"))
    partner = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(codes.device)
    return F.cross_entropy(logits, partner)


LOG_DEPTH_FLOOR = 0.01  # depth (a share of max depth: 0.1 m of 10 m) below which the log depth term no longer grows


@dataclass
class DepthLoss:
    """w_l1 * L1 + w_log_depth * L1 of log depth + w_gradient * image-gradient L1 + w_ssim * (1 - SSIM) / 2,
    over valid pixels, on depth scaled to [0, 1] (0 m .. max depth).

    L1 of log depth, mean |ln p - ln t| (both at least :data:`LOG_DEPTH_FLOOR`), weighs an error by
    its share of the true depth, as AbsRel does, where L1 weighs a far wall's metres most."""

    w_l1: float = 0.1
    w_gradient: float = 1.0
    w_ssim: float = 1.0
    w_log_depth: float = 0.0

    def __post_init__(self) -> None:
        weights = (self.w_l1, self.w_gradient, self.w_ssim, self.w_log_depth)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"loss weights must be 0 or more and not all 0, got {weights}")

    def __call__(self, pred_unit: torch.Tensor, target_unit: torch.Tensor, valid: torch.Tensor) -> dict:
        pred, target = (pred_unit.float() + 1) / 2, (target_unit + 1) / 2  # (B, 1, H, W) in [0, 1]
        valid = valid.to(pred.dtype)
        count = valid.sum().clamp_min(1.0)
        l1 = (torch.abs(pred - target) * valid).sum() / count
        gradient = pred.new_zeros(())
        for dim in (-1, -2):
            both = _pair_valid(valid, dim)
            diff = torch.abs(pred.diff(dim=dim) - target.diff(dim=dim)) * both
            gradient = gradient + diff.sum() / both.sum().clamp_min(1.0)
        # holes take the prediction's value so they neither reward nor punish the local statistics
        filled = torch.where(valid.bool(), target, pred.detach())
        ssim = (ssim_map(pred, filled) * valid).sum() / count
        structural = (1 - ssim) / 2
        loss = self.w_l1 * l1 + self.w_gradient * gradient + self.w_ssim * structural
        terms = {"l1": l1, "gradient": gradient, "ssim": structural}
        if self.w_log_depth:
            # a hole's target is 0 m, floored like every value: finite, and then masked out by valid
            log_error = torch.log(pred.clamp_min(LOG_DEPTH_FLOOR)) - torch.log(target.clamp_min(LOG_DEPTH_FLOOR))
            terms["log_depth"] = (log_error.abs() * valid).sum() / count
            loss = loss + self.w_log_depth * terms["log_depth"]
        return {"loss": loss, **terms}


DEPTH_TERMS = ("l1", "log_l1")
MASK_TARGETS = ("valid", "trusted", "laplace")


def _pair_valid(valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Where a finite difference along ``dim`` has both its pixels valid: (B, 1, H, W-1) or (B, 1, H-1, W)."""
    return valid.narrow(dim, 1, valid.shape[dim] - 1) * valid.narrow(dim, 0, valid.shape[dim] - 1)


def surface_normals(depth: torch.Tensor) -> torch.Tensor:
    """Unit normals (-dz/dx, -dz/dy, 1) / norm of a (B, 1, H, W) depth map, from forward differences
    with x and y in image widths (so a plane's normal does not change with the image size):
    (B, 3, H-1, W-1), each from pixel (y, x) and its right and lower neighbours."""
    scale = depth.shape[-1]
    dx = (depth[..., :-1, 1:] - depth[..., :-1, :-1]) * scale
    dy = (depth[..., 1:, :-1] - depth[..., :-1, :-1]) * scale
    normal = torch.cat([-dx, -dy, torch.ones_like(dx)], dim=1)
    return normal / normal.norm(dim=1, keepdim=True)


@dataclass
class MFFDepthLoss:
    """Hu et al.'s losses for ``mff_depth``, on depth scaled to [0, 1] (0 m .. max depth), the depth
    terms over valid pixels only:

    - depth: ``depth_term`` "l1" (|e|) or "log_l1" (ln(1 + |e| / log_alpha), Hu's ln(|e| + alpha)
      moved to 0 at no error) of the error e = prediction - truth;
    - gradient: the same function of the errors of the x and y differences;
    - normal: 1 - cos of the angle between the normals of the prediction and of the truth;
    - mask: binary cross-entropy of the mask logits (every pixel) against ``mask_target``:
      "valid" (the truth has a reading) or "trusted" (the truth has a reading and the prediction is
      within ``mask_error`` of it: |prediction - truth| / truth <= mask_error). The "trusted" target
      is computed from the prediction detached: it says where the depth is wrong, and no gradient
      reaches the depth through it (in mask_mode "head" the mask's own gradient still reaches the
      features the two heads share, as with "valid");
    - mask, ``mask_target`` "laplace": the mask probability sigmoid(z) is read as
      P(|ln(prediction / truth)| <= a), a = ln(1 + mask_error), under a Laplace distribution of the
      log error with scale b = a / softplus(z) (then P = 1 - exp(-a / b) = sigmoid(z) exactly). Valid
      pixels pay that Laplace's negative log-likelihood of their (detached) log error,
      |r| softplus(z) / a - ln softplus(z), so the mask learns how large the error is, not only on
      which side of mask_error it falls; pixels without a true reading pay the BCE of target 0,
      softplus(z). The exported mask is unchanged: sigmoid(z), a probability.

    ``loss`` = w_depth * depth + w_gradient * gradient + w_normal * normal + w_mask * mask.
    """

    depth_term: str = "l1"
    log_alpha: float = 0.05  # 0.5 m at a 10 m maximum depth, Hu et al.'s alpha
    w_depth: float = 1.0
    w_gradient: float = 1.0
    w_normal: float = 1.0
    w_mask: float = 1.0
    mask_target: str = "valid"
    mask_error: float = 0.25  # "trusted": the largest relative error of a trusted pixel

    def __post_init__(self) -> None:
        if self.depth_term not in DEPTH_TERMS:
            raise ValueError(f"depth_term {self.depth_term!r} is not one of {', '.join(DEPTH_TERMS)}")
        if self.mask_target not in MASK_TARGETS:
            raise ValueError(f"mask_target {self.mask_target!r} is not one of {', '.join(MASK_TARGETS)}")
        if not self.mask_error > 0:
            raise ValueError(f"mask_error must be positive (a relative error, 0.25 = 25 %), got {self.mask_error}")
        if self.log_alpha <= 0:
            raise ValueError(f"log_alpha must be positive, got {self.log_alpha}")
        weights = (self.w_depth, self.w_gradient, self.w_normal, self.w_mask)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"loss weights must be 0 or more and not all 0, got {weights}")

    def mask_truth(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The mask's BCE target (B, 1, H, W) in {0, 1} for depth in [0, 1]: the validity, or for
        "trusted" the valid pixels whose detached prediction is within ``mask_error`` of the truth."""
        if self.mask_target == "valid":
            return valid
        close = (pred.detach() - target).abs() <= self.mask_error * target  # no division: target > 0 where valid
        return valid * close.to(valid.dtype)

    def laplace_mask_nll(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                         mask_logits: torch.Tensor) -> torch.Tensor:
        """The "laplace" mask term, averaged over every pixel (see the class docstring); depth in [0, 1]."""
        a = math.log1p(self.mask_error)
        z = mask_logits.float()
        sharpness = F.softplus(z)  # a / b
        # ln softplus(z) without -inf: softplus(z) = e^z to float precision below -15
        log_sharpness = torch.where(z < -15.0, z, torch.log(F.softplus(z.clamp_min(-15.0))))
        floor = 1e-4  # 1 mm at 10 m: a prediction of 0 has a finite log error
        log_error = (torch.log(pred.detach().clamp_min(floor)) - torch.log(target.clamp_min(floor))).abs()
        nll = log_error * sharpness / a - log_sharpness
        return torch.where(valid.bool(), nll, sharpness).mean()

    def _error(self, error: torch.Tensor) -> torch.Tensor:
        error = error.abs()
        return error if self.depth_term == "l1" else torch.log1p(error / self.log_alpha)

    def __call__(self, pred_unit: torch.Tensor, target_unit: torch.Tensor, valid: torch.Tensor,
                 mask_logits: torch.Tensor | None = None) -> dict:
        pred, target = (pred_unit.float() + 1) / 2, (target_unit + 1) / 2  # (B, 1, H, W) in [0, 1]
        valid = valid.to(pred.dtype)
        depth = (self._error(pred - target) * valid).sum() / valid.sum().clamp_min(1.0)
        gradient = pred.new_zeros(())
        for dim in (-1, -2):
            both = _pair_valid(valid, dim)
            error = self._error(pred.diff(dim=dim) - target.diff(dim=dim)) * both
            gradient = gradient + error.sum() / both.sum().clamp_min(1.0)
        corner = valid[..., :-1, :-1] * valid[..., :-1, 1:] * valid[..., 1:, :-1]  # the pixels of each normal
        cosine = (surface_normals(pred) * surface_normals(target)).sum(dim=1, keepdim=True)
        normal = ((1 - cosine) * corner).sum() / corner.sum().clamp_min(1.0)
        terms = {"depth": depth, "gradient": gradient, "normal": normal}
        loss = self.w_depth * depth + self.w_gradient * gradient + self.w_normal * normal
        if mask_logits is not None:
            if self.mask_target == "laplace":
                terms["mask"] = self.laplace_mask_nll(pred, target, valid, mask_logits)
            else:
                terms["mask"] = F.binary_cross_entropy_with_logits(mask_logits.float(),
                                                                   self.mask_truth(pred, target, valid))
            loss = loss + self.w_mask * terms["mask"]
        return {"loss": loss, **terms}
