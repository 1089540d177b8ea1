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
GOOD_KEPT_TARGET = 0.9  # the must-show's operating point: keep at least this share of the good pixels
# The thresholds of the trade-off curve: every 0.001, and finer towards 1, where a confident mask's
# probabilities crowd. Each pixel is counted in the bin of the largest edge at or below its mask, so
# the counts at an edge are exact for "mask >= edge".
CURVE_EDGES = np.unique(np.concatenate([np.round(np.linspace(0.0, 1.0, 1001), 3),
                                        1.0 - np.logspace(-7, -3, 13)]))
# pixel kinds whose mask histograms the curve needs
_CURVE_KINDS = ("good", "bad", "valid", "holes", "unchecked")


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
        self.histograms = {kind: np.zeros(len(CURVE_EDGES), dtype=np.int64) for kind in _CURVE_KINDS}
        self.frames: list[tuple[int, int, int]] = []  # per image: good, bad, bad after its own scale

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
        if checked.any():  # how much of the error is one wrong scale for the whole frame
            truth, estimate = gt_m[checked], pred_m[checked]
            rescaled = estimate * np.median(truth / estimate)
            bad_rescaled = int((np.abs(rescaled - truth) / truth > BAD_ERROR).sum())
            self.frames.append((int(good.sum()), int(bad.sum()), bad_rescaled))
        # the edges in the mask's own precision, as ``mask >= threshold`` compares (a float32 mask in float32)
        edges = CURVE_EDGES.astype(mask.dtype) if mask.dtype.kind == "f" else CURVE_EDGES
        bins = np.searchsorted(edges, mask, side="right") - 1
        counted = np.isfinite(mask) & (bins >= 0)  # a NaN mask trusts nothing, as mask >= threshold says
        for kind, where in zip(_CURVE_KINDS, (good, bad, valid, ~valid, published & ~valid)):
            self.histograms[kind] += np.bincount(bins[where & counted], minlength=len(CURVE_EDGES))

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
            "bad_share_after_frame_scale": (sum(f[2] for f in self.frames) / c["checked"] if c["checked"]
                                            else float("nan")),
            "frame_oracle_bad_removed": self.frame_oracle(),
            "curve": self.curve(),
            "definitions": "pooled over every pixel of every scored image at the truth's size, whole frame; "
                           "valid: truth in (1e-3, 10) m; trusted: mask >= threshold; published: a finite "
                           f"estimate > 0; bad / good: |error| / truth > / <= {BAD_ERROR:g} where the truth is "
                           "valid; unchecked: published where the truth has no reading; bad_share_after_frame_scale: "
                           "the bad share with each image's estimate scaled by its median truth / estimate; "
                           "frame_oracle_bad_removed: the bad pixels of whole images dropped, worst bad share first, "
                           f"while {GOOD_KEPT_TARGET:.0%} of the good pixels stay (about the most a mask that only "
                           "knew which frames are wrong would remove)",
        }

    def frame_oracle(self, good_kept: float = GOOD_KEPT_TARGET) -> float:
        """The share of bad pixels removed by dropping whole images, worst bad share first, until
        the next would leave less than ``good_kept`` of the good pixels."""
        good_total, bad_total = sum(f[0] for f in self.frames), sum(f[1] for f in self.frames)
        if not bad_total:
            return float("nan")
        kept, removed = good_total, 0
        for good, bad, _ in sorted(self.frames, key=lambda f: f[1] / (f[0] + f[1]), reverse=True):
            if kept - good < good_kept * good_total:
                break
            kept, removed = kept - good, removed + bad
        return removed / bad_total

    def curve(self) -> dict:
        """The trade-off at every threshold of CURVE_EDGES, as columns: the share of good pixels kept,
        of bad pixels removed, the bad share of the published pixels with a truth, the mask IoU with
        the truth's validity, and the share of published pixels without a truth, with the mask."""
        kept = {kind: np.cumsum(h[::-1])[::-1] for kind, h in self.histograms.items()}  # mask >= edge

        def ratio(part: np.ndarray, whole) -> list:
            whole = np.asarray(whole, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.round(np.where(whole > 0, part / np.maximum(whole, 1), np.nan), 6).tolist()

        good, bad = self.counts["good"], self.counts["bad"]
        published_trusted = kept["good"] + kept["bad"] + kept["unchecked"]
        return {"threshold": CURVE_EDGES.tolist(),
                "good_kept_by_mask": ratio(kept["good"], good),
                "bad_removed_by_mask": ratio(bad - kept["bad"], bad),
                "bad_share_with_mask": ratio(kept["bad"], kept["good"] + kept["bad"]),
                "mask_iou": ratio(kept["valid"], self.counts["valid"] + kept["holes"]),
                "unchecked_share_with_mask": ratio(kept["unchecked"], published_trusted)}


def operating_threshold(curve: dict, good_kept: float = GOOD_KEPT_TARGET) -> float:
    """The largest threshold of ``curve`` (:meth:`MaskTally.curve`) whose mask keeps at least
    ``good_kept`` of the good pixels: the one that removes the most bad pixels at that cost."""
    if not 0.0 < good_kept <= 1.0:
        raise ValueError(f"the share of good pixels to keep is {good_kept}; expected one in (0, 1]")
    meets = [t for t, kept in zip(curve["threshold"], curve["good_kept_by_mask"]) if kept >= good_kept]
    if not meets:
        raise ValueError(f"no threshold keeps {good_kept:.0%} of the good pixels (the frames have none)")
    return max(meets)


def curve_at(curve: dict, threshold: float) -> dict:
    """The curve's row at ``threshold``, one of its edges."""
    index = curve["threshold"].index(threshold)
    return {key: values[index] for key, values in curve.items()}


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


# --- the must-show in one command: threshold chosen on validation frames, scored on test frames ---

_REPORT_ROWS = [("mask IoU vs true validity", "mask_iou"),
                ("good px (error <= 25 %) kept", "good_kept_by_mask"),
                ("bad px (error > 25 %) removed", "bad_removed_by_mask"),
                ("valid px with error > 25 %", "bad_share_with_mask"),
                ("published px without truth", "unchecked_share_with_mask")]
_SHOWN_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def must_show(checkpoint: str, data: str, validation: str, out, good_kept: float = GOOD_KEPT_TARGET,
              validation_split: str = "all") -> dict:
    """Choose ``mask_threshold`` on ``validation`` (the largest keeping ``good_kept`` of its good
    pixels), then score the mask at it on the test split of ``data``; writes ``mask_report.json``
    and each evaluation's metrics and figure under ``out``."""
    import json
    from pathlib import Path

    from rgbd_vae_ros.files import atomic_write_text

    from .evaluate import _finite_or_null, evaluate

    out = Path(out)
    if Path(validation).resolve() == Path(data).resolve() and validation_split != "train":
        raise ValueError(f"--validation is the test data {data!r}: the threshold would be chosen on the frames it is "
                         "scored on; give other frames, or --validation-split train")
    chosen_on = evaluate("depth", checkpoint, validation, out / "validation", split=validation_split)
    threshold = operating_threshold(chosen_on["mask"]["curve"], good_kept)
    test = evaluate("depth", checkpoint, data, out / "test", split="test", mask_threshold=threshold)
    mask = test["mask"]
    report = {
        "checkpoint": str(checkpoint), "model": test["model"], "good_kept_target": good_kept,
        "validation": {"data": str(validation), "split": validation_split, "images": chosen_on["images"],
                       "threshold": threshold, "at_threshold": curve_at(chosen_on["mask"]["curve"], threshold)},
        "test": {"data": str(data), "split": "test", "images": test["images"], "depth": test["depth"],
                 "mean_depth_baseline": test["mean_depth_baseline"],
                 "without_mask": {"bad_share": mask["bad_share_without_mask"],
                                  "unchecked_share": mask["unchecked_share_without_mask"]},
                 "at_threshold": curve_at(mask["curve"], threshold),
                 "at_0.5": curve_at(mask["curve"], DEFAULT_THRESHOLD),
                 "interior_holes_flagged_at_threshold": mask["interior_holes_flagged_by_mask"],
                 "bad_share_after_frame_scale": mask["bad_share_after_frame_scale"],
                 "frame_oracle_bad_removed": mask["frame_oracle_bad_removed"],
                 "curve": mask["curve"]},
    }
    atomic_write_text(out / "mask_report.json", json.dumps(_finite_or_null(report), indent=1, allow_nan=False) + "\n")
    return report


def report_text(report: dict) -> str:
    """The must-show table of :func:`must_show`'s report."""
    val, test = report["validation"], report["test"]
    t = val["threshold"]
    lines = [f"{report['model']}: mask_threshold {t:g} chosen on {val['images']} frames of {val['data']} "
             f"(split {val['split']}), where it keeps {val['at_threshold']['good_kept_by_mask']:.1%} of the good "
             f"pixels (target >= {report['good_kept_target']:.0%})",
             f"test: {test['images']} frames of {test['data']} (split test); AbsRel {test['depth']['abs_rel']:.3f}, "
             f"delta1 {test['depth']['delta1']:.3f} (mean-depth baseline {test['mean_depth_baseline']['abs_rel']:.3f}, "
             f"{test['mean_depth_baseline']['delta1']:.3f})",
             f"{'':<34}{'no mask':>10}{'mask 0.5':>10}{f'mask {t:g}':>12}"]
    without = {"mask_iou": float("nan"), "good_kept_by_mask": 1.0, "bad_removed_by_mask": 0.0,
               "bad_share_with_mask": test["without_mask"]["bad_share"],
               "unchecked_share_with_mask": test["without_mask"]["unchecked_share"]}

    def cell(value, width: int = 0) -> str:  # None: a share of nothing (NaN in the report's JSON)
        return f"{value:>{width}.3f}" if value is not None and np.isfinite(value) else f"{'-':>{width}}"

    for label, key in _REPORT_ROWS:
        lines.append(f"{label:<34}{cell(without[key], 10)}{cell(test['at_0.5'][key], 10)}"
                     f"{cell(test['at_threshold'][key], 12)}")
    lines.append(f"frame-wide scale: bad share {cell(test['without_mask']['bad_share'])} -> "
                 f"{cell(test['bad_share_after_frame_scale'])} with each frame rescaled by its median truth / estimate; "
                 f"dropping whole frames (oracle) removes {cell(test['frame_oracle_bad_removed'])} of the bad pixels "
                 f"at {GOOD_KEPT_TARGET:.0%} good kept")
    lines.append("test curve: threshold, good kept, bad removed")
    curve = test["curve"]
    for shown in sorted(set(_SHOWN_THRESHOLDS) | {t}):
        row = curve_at(curve, shown)
        lines.append(f"  {shown:<8g}{cell(row['good_kept_by_mask'], 8)}{cell(row['bad_removed_by_mask'], 8)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m rgbd_vae_training.mask_eval",
        description="score a depth model's validity mask (issue 19's must-show): mask_threshold chosen on "
                    "validation frames to keep a share of the good pixels, then bad pixels removed and good "
                    "pixels kept on the test frames, beside no mask and the default 0.5")
    parser.add_argument("--checkpoint", required=True, help="a trained mask model's .pt checkpoint")
    parser.add_argument("--data", required=True, help="data set whose test split is scored")
    parser.add_argument("--validation", required=True, help="data set the threshold is chosen on (not the test frames)")
    parser.add_argument("--validation-split", choices=("all", "test", "train"), default="all")
    parser.add_argument("--good-kept", type=float, default=GOOD_KEPT_TARGET,
                        help="share of good pixels the chosen threshold keeps on the validation frames (default 0.9)")
    parser.add_argument("--out", required=True, help="folder for mask_report.json and the evaluations")
    args = parser.parse_args(argv)
    if not 0.0 < args.good_kept <= 1.0:
        parser.error(f"--good-kept is {args.good_kept}; expected a share in (0, 1]")
    from .cli import _one_sentence

    try:
        report = must_show(args.checkpoint, args.data, args.validation, args.out, args.good_kept, args.validation_split)
    except Exception as exc:  # the boundary, as rgbd-vae's: one sentence and status 1
        print(f"mask_eval: error: {_one_sentence(exc)}", file=sys.stderr)
        return 1
    print(report_text(report))
    print(f"wrote {args.out}/mask_report.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
