"""The validity mask of a depth model (``mff_depth``) scored against the truth's own validity, for
``rgbd-vae eval depth`` (issue 19): does the mask keep the pixels whose depth is good and remove
those whose depth is wrong or cannot be checked?

Pixels are pooled over every scored image at the ground truth's resolution and over the whole
frame (no Eigen crop: the registration border and the IR shadows are what the mask must find).

- true validity: the ground truth has a reading in (1e-3, 10) m (the NYU protocol's range);
- trusted: mask probability >= ``threshold`` (the nodes' ``mask_threshold``);
- published: what a node publishes without the mask, a finite estimate > 0; with the mask, the
  published pixels that are also trusted;
- error: |estimate - truth| / truth where the truth has a reading; "bad" is an error over 25 %,
  "good" one of 25 % or less;
- holes: pixels without a true reading; interior holes: those inside the Eigen crop (the IR
  shadows and other holes, without the registration border).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .metrics import eigen_crop_mask, protocol_valid

BAD_ERROR = 0.25  # relative error beyond which a published depth is wrong (issue 19's must-show)
DEFAULT_THRESHOLD = 0.5  # the nodes' default mask_threshold


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A mask probability (h, w) to (height, width), as the depth stage resizes it."""
    from rgbd_vae_ros.processing import resize_planes

    if mask.shape == (height, width):
        return mask.astype(np.float32, copy=False)
    return resize_planes(mask.astype(np.float32)[..., None], height, width)[..., 0]


class MaskTally:
    """Pixel counts over the scored images; :meth:`result` turns them into the shares."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"mask threshold {threshold} is not a probability in [0, 1]")
        self.threshold = threshold
        self.counts: Counter = Counter()

    def add(self, pred_m: np.ndarray, mask: np.ndarray, gt_m: np.ndarray) -> None:
        """One image: estimate (metres, NaN = none), mask probability and truth, all at the truth's size."""
        if not (pred_m.shape == mask.shape == gt_m.shape):
            raise ValueError(f"estimate {pred_m.shape}, mask {mask.shape} and truth {gt_m.shape} differ in size")
        valid = protocol_valid(gt_m)
        trusted = mask >= self.threshold
        with np.errstate(invalid="ignore", divide="ignore"):
            published = np.isfinite(pred_m) & (pred_m > 0)
            error = np.abs(pred_m - gt_m) / gt_m
        checked = published & valid
        bad, good = checked & (error > BAD_ERROR), checked & (error <= BAD_ERROR)
        interior = eigen_crop_mask(*gt_m.shape)  # without the registration border
        interior_holes = interior & ~valid
        c = self.counts
        c["pixels"] += valid.size
        c["interior"] += int(interior.sum())
        c["holes_flagged"] += int((~valid & ~trusted).sum())
        c["interior_holes"] += int(interior_holes.sum())
        c["interior_holes_flagged"] += int((interior_holes & ~trusted).sum())
        c["valid"] += int(valid.sum())
        c["trusted"] += int(trusted.sum())
        c["trusted_and_valid"] += int((trusted & valid).sum())
        c["trusted_or_valid"] += int((trusted | valid).sum())
        c["published"] += int(published.sum())
        c["published_trusted"] += int((published & trusted).sum())
        c["unchecked"] += int((published & ~valid).sum())
        c["unchecked_trusted"] += int((published & trusted & ~valid).sum())
        c["checked"] += int(checked.sum())
        c["checked_trusted"] += int((checked & trusted).sum())
        c["bad"] += int(bad.sum())
        c["bad_trusted"] += int((bad & trusted).sum())
        c["good"] += int(good.sum())
        c["good_trusted"] += int((good & trusted).sum())

    def result(self) -> dict:
        c = self.counts

        def share(part: str, whole: str) -> float:
            return c[part] / c[whole] if c[whole] else float("nan")

        return {
            "threshold": self.threshold,
            "mask_iou": share("trusted_and_valid", "trusted_or_valid"),
            "true_valid_share": share("valid", "pixels"),
            "trusted_share": share("trusted", "pixels"),
            "bad_share_without_mask": share("bad", "checked"),
            "bad_share_with_mask": share("bad_trusted", "checked_trusted"),
            "good_kept_by_mask": share("good_trusted", "good"),
            "bad_removed_by_mask": 1.0 - share("bad_trusted", "bad") if c["bad"] else float("nan"),
            "unchecked_share_without_mask": share("unchecked", "published"),
            "unchecked_share_with_mask": share("unchecked_trusted", "published_trusted"),
            "holes_flagged_by_mask": (c["holes_flagged"] / (c["pixels"] - c["valid"]) if c["pixels"] > c["valid"]
                                      else float("nan")),
            "interior_hole_share": share("interior_holes", "interior"),
            "interior_holes_flagged_by_mask": share("interior_holes_flagged", "interior_holes"),
            "pixels": c["pixels"],
            "definitions": "pooled over every pixel of every scored image at the truth's size, whole frame; "
                           "valid: truth in (1e-3, 10) m; trusted: mask >= threshold; published: a finite "
                           f"estimate > 0; bad / good: |error| / truth > / <= {BAD_ERROR:g} where the truth is "
                           "valid; unchecked: published where the truth has no reading",
        }


# (table label, result key): the rows `eval depth` prints for a mask model
TABLE_ROWS = [
    ("mask IoU vs true validity", "mask_iou"),
    ("valid px with error > 25 %, no mask", "bad_share_without_mask"),
    ("valid px with error > 25 %, masked", "bad_share_with_mask"),
    ("good px (error <= 25 %) kept by mask", "good_kept_by_mask"),
    ("bad px removed by mask", "bad_removed_by_mask"),
    ("published px without truth, no mask", "unchecked_share_without_mask"),
    ("published px without truth, masked", "unchecked_share_with_mask"),
    ("holes (no true reading) flagged by mask", "holes_flagged_by_mask"),
    ("interior holes (Eigen crop) flagged", "interior_holes_flagged_by_mask"),
]


def table_rows(mask_result: dict) -> list[dict]:
    return [{"metric": label, "model": mask_result[key]} for label, key in TABLE_ROWS]


def mask_panels(mask: np.ndarray, gt_m: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Two figure tiles (rgb8): the mask probability in grey with the untrusted pixels tinted red,
    and the truth's validity (white = a reading)."""
    grey = np.clip(mask * 255.0, 0, 255).astype(np.uint8)
    tile = np.repeat(grey[..., None], 3, axis=-1)
    tile[mask < threshold, 0] = np.maximum(tile[mask < threshold, 0], 160)
    valid = np.repeat((protocol_valid(gt_m) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return [tile, valid]
