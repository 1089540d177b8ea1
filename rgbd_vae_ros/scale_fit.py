"""Relative -> metric: the scale and shift that turn a model's relative inverse depth into
measured inverse depth, fitted robustly (SPEC §5.1). Pure numpy.

    fit = fit_inverse_depth(relative, measured_m)     # both (H, W); measured NaN/0 where no reading
    if fit.ok:
        inverse = fit.scale * relative + fit.shift    # 1 / metres

Robust to outliers (a measured depth with wrong readings, a model wrong on part of the frame):
RANSAC over two-point (one-point without shift) samples scores each candidate by the points whose
inverse depth it predicts within ``threshold`` (relative), then least squares on the inliers,
repeated until the inlier set settles. Deterministic: the samples come from a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_INLIER_FRACTION", "MIN_POINTS", "THRESHOLD", "InverseDepthFit", "fit_inverse_depth"]

# A point is an inlier when the fitted inverse depth is within this fraction of the measured one
# (about the same fraction of its depth).
THRESHOLD = 0.1
MIN_POINTS = 16  # fewer measured pixels than this: no fit
MIN_INLIER_FRACTION = 0.3  # fewer of them agreeing: the measured depth and the model disagree, no fit
TRIALS = 64
SCORE_POINTS = 4096  # RANSAC scores candidates on at most this many points (evenly spaced)
FIT_POINTS = 32768  # the fit uses at most this many (evenly spaced): a dense 640x480 depth has ~300k
REFINE_ROUNDS = 5


@dataclass(frozen=True)
class InverseDepthFit:
    scale: float
    shift: float
    points: int  # measured pixels used (at most FIT_POINTS, evenly spaced)
    inliers: int
    residual: float  # median |fitted - measured| / measured inverse depth over the inliers
    reason: str = ""  # why there is no fit ('' when there is)

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def inlier_fraction(self) -> float:
        return self.inliers / self.points if self.points else 0.0


def _none(points: int, reason: str) -> InverseDepthFit:
    return InverseDepthFit(float("nan"), float("nan"), points, 0, float("nan"), reason)


def _solve(x: np.ndarray, q: np.ndarray, with_shift: bool) -> tuple[float, float] | None:
    """Least squares q ~ s x + t (or s x); None when degenerate."""
    if with_shift:
        x_mean, q_mean = x.mean(), q.mean()
        dx = x - x_mean
        denominator = float(dx @ dx)
        if denominator <= 1e-12 * max(1.0, float(x_mean) ** 2) * len(x):
            return None
        s = float(dx @ (q - q_mean)) / denominator
        return s, float(q_mean - s * x_mean)
    denominator = float(x @ x)
    return (float(x @ q) / denominator, 0.0) if denominator > 0 else None


def _inliers(x: np.ndarray, q: np.ndarray, s: float, t: float, threshold: float) -> np.ndarray:
    return np.abs(s * x + t - q) < threshold * q


def fit_inverse_depth(relative: np.ndarray, measured_m: np.ndarray, with_shift: bool = True,
                      threshold: float = THRESHOLD, seed: int = 0) -> InverseDepthFit:
    """Scale and shift with ``1 / measured_m ~ scale * relative + shift`` over the pixels where both
    are valid (measured finite > 0, relative finite); ``with_shift`` false fits the scale alone
    (disparity). The scale must come out positive (larger relative values are nearer)."""
    relative = np.asarray(relative, np.float64).ravel()
    measured = np.asarray(measured_m, np.float64).ravel()
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(relative) & np.isfinite(measured) & (measured > 0)
    x, q = relative[valid], 1.0 / measured[valid]
    if len(x) > FIT_POINTS:
        step = len(x) // FIT_POINTS + 1
        x, q = x[::step], q[::step]
    n = len(x)
    if n < MIN_POINTS:
        return _none(n, f"{n} pixels with both a measured depth and an estimate; a fit needs {MIN_POINTS}")
    stride = max(1, n // SCORE_POINTS)
    xs, qs = x[::stride], q[::stride]
    rng = np.random.default_rng(seed)
    best, best_count = None, -1
    size = 2 if with_shift else 1
    for _ in range(TRIALS):
        pick = rng.choice(len(xs), size, replace=False)
        candidate = _solve(xs[pick], qs[pick], with_shift)
        if candidate is None or candidate[0] <= 0:
            continue
        count = int(np.count_nonzero(_inliers(xs, qs, *candidate, threshold)))
        if count > best_count:
            best, best_count = candidate, count
    if best is None:
        return _none(n, "the model's relative values do not vary where depth was measured, or fall as the "
                        "measured depth falls; no positive scale fits")
    inliers = _inliers(x, q, *best, threshold)
    for _ in range(REFINE_ROUNDS):
        if np.count_nonzero(inliers) < max(MIN_POINTS, size):
            break
        refined = _solve(x[inliers], q[inliers], with_shift)
        if refined is None or refined[0] <= 0:
            break
        best = refined
        settled = _inliers(x, q, *best, threshold)
        if np.array_equal(settled, inliers):
            break
        inliers = settled
    count = int(np.count_nonzero(inliers))
    residual = float(np.median(np.abs(best[0] * x[inliers] + best[1] - q[inliers]) / q[inliers])) if count else float("nan")
    fit = InverseDepthFit(best[0], best[1], n, count, residual)
    if fit.inlier_fraction < MIN_INLIER_FRACTION:
        return InverseDepthFit(fit.scale, fit.shift, n, count, residual,
                               f"only {count} of {n} measured pixels ({fit.inlier_fraction:.0%}) agree with the "
                               f"best fit within {threshold:.0%}; at least {MIN_INLIER_FRACTION:.0%} must")
    return fit
