"""Evaluation metrics (SPEC §7): the NYU depth protocol and the VAE reconstruction metrics.

Depth, per image: ground truth valid in (1e-3, 10) m, prediction clamped to [1e-3, 10], Eigen crop
rows 45:471 x cols 41:601 at 480x640 (scaled to other sizes), then averaged over images.
"""

from __future__ import annotations

import numpy as np

MIN_DEPTH_M, MAX_DEPTH_M = 1e-3, 10.0
EIGEN_CROP = (45, 471, 41, 601)  # top, bottom, left, right at 480 x 640
DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """True inside the Eigen crop; at sizes other than 480x640 the crop scales with the image."""
    top, bottom, left, right = EIGEN_CROP
    mask = np.zeros((height, width), dtype=bool)
    mask[round(top * height / 480):round(bottom * height / 480), round(left * width / 640):round(right * width / 640)] = True
    return mask


def protocol_valid(gt_m: np.ndarray) -> np.ndarray:
    """Where the ground truth has a reading the protocol scores: finite, in (MIN_DEPTH_M, MAX_DEPTH_M)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt_m) & (gt_m > MIN_DEPTH_M) & (gt_m < MAX_DEPTH_M)


def depth_metrics(pred_m: np.ndarray, gt_m: np.ndarray, crop: bool = True) -> dict[str, float] | None:
    """The NYU metrics of one image; None when it has no valid ground-truth pixel."""
    if pred_m.shape != gt_m.shape:
        raise ValueError(f"prediction {pred_m.shape} and ground truth {gt_m.shape} differ in size")
    valid = protocol_valid(gt_m)
    if crop:
        valid &= eigen_crop_mask(*gt_m.shape)
    if not valid.any():
        return None
    gt = gt_m[valid].astype(np.float64)
    pred = np.clip(np.nan_to_num(pred_m[valid].astype(np.float64), nan=MIN_DEPTH_M), MIN_DEPTH_M, MAX_DEPTH_M)
    ratio = np.maximum(pred / gt, gt / pred)
    return {
        "abs_rel": float(np.mean(np.abs(pred - gt) / gt)),
        "sq_rel": float(np.mean((pred - gt) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((pred - gt) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(pred) - np.log(gt)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25 ** 2)),
        "delta3": float(np.mean(ratio < 1.25 ** 3)),
    }


def _mean_of_numbers(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def average(per_image: list[dict[str, float] | None]) -> dict[str, float]:
    """Mean of each metric over the images that had one (images without valid pixels are skipped; a
    reconstruction that published no depth in an image has NaN errors there, skipped too)."""
    counted = [m for m in per_image if m is not None]
    if not counted:
        return {"images": 0}
    result = {key: _mean_of_numbers([m[key] for m in counted]) for key in counted[0]}
    result["images"] = len(counted)
    return result


def psnr(pred_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of 8-bit images (inf when identical)."""
    mse = np.mean((pred_u8.astype(np.float64) - target_u8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(pred_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """Mean SSIM of two (H, W, 3) uint8 images (Gaussian window 11, sigma 1.5, per channel)."""
    import torch

    from .losses import ssim_map

    def to_tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]  # (1, 3, H, W)

    with torch.no_grad():
        return float(ssim_map(to_tensor(pred_u8), to_tensor(target_u8)).mean())


def depth_error(pred_m: np.ndarray, gt_m: np.ndarray) -> dict[str, float] | None:
    """RMSE (m) and AbsRel of a reconstructed depth image over the valid ground truth (no crop) where the
    reconstruction has a value (a decoder leaves out depth where its input had no reading), and
    ``published``: the share of those ground-truth pixels it has a value for. None without valid truth."""
    if pred_m.shape != gt_m.shape:
        raise ValueError(f"reconstruction {pred_m.shape} and ground truth {gt_m.shape} differ in size")
    readings = protocol_valid(gt_m)
    if not readings.any():
        return None
    with np.errstate(invalid="ignore"):
        shown = readings & np.isfinite(pred_m) & (pred_m > 0)
    published = float(np.count_nonzero(shown) / np.count_nonzero(readings))
    if not shown.any():
        return {"rmse": float("nan"), "abs_rel": float("nan"), "published": published}
    metrics = depth_metrics(pred_m, np.where(shown, gt_m, np.nan), crop=False)
    return {"rmse": metrics["rmse"], "abs_rel": metrics["abs_rel"], "published": published}
