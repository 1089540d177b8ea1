"""The depth of one frame from a carded third-party model (SPEC §5.1), for the processors.

A metric card gives metres (scaled by f_camera / f_train when the frame has a valid camera_info and
the card its training focal length). A relative card gives ``depth/relative`` (32FC1, unitless) and
metres only when the frame's measured ``depth`` fits its scale and shift, or the card has a fixed
scale; a frame without metres publishes nothing on ``depth/image`` and is counted
(``depth_frames_without_fit``). The latest fit goes to /diagnostics: ``depth_fit_inliers``,
``depth_fit_inlier_share``, ``depth_fit_residual`` (median relative residual in inverse depth).
"""

from __future__ import annotations

import numpy as np

from rgbd_vae_ros.carded_depth import CardedDepthStage
from rgbd_vae_ros.conversion import ImageConversionError, numpy_to_image
from rgbd_vae_ros.stages import StageError

RELATIVE_OUTPUT = "depth/relative"


def carded_depth(processor, stage: CardedDepthStage, rgb_u8: np.ndarray, frame, wanted, out: list) -> np.ndarray | None:
    """Metres at the image's size (NaN: no estimate), or None when this frame has no metric scale;
    appends ``depth/relative`` to ``out`` for a relative model while it is wanted, where the
    processor has that output (depth_estimator)."""
    from .processors import camera_fx_px, measured_depth_m

    height, width = rgb_u8.shape[:2]
    card = stage.card
    measured_m = None
    if frame.depth is not None and not card.is_metric:
        try:
            measured_m = measured_depth_m(frame.depth, rgb_u8)
        except (ImageConversionError, StageError) as exc:
            processor.note("measured_depth_unused", str(exc))
    fx_px = camera_fx_px(frame, width, height) if card.output.focal_length_px is not None else None
    result = stage.estimate_carded(rgb_u8, measured_m, fx_px)
    if result.relative is not None and RELATIVE_OUTPUT in processor.outputs and wanted(RELATIVE_OUTPUT):
        out.append((RELATIVE_OUTPUT, numpy_to_image(result.relative, "32FC1", frame.image.header)))
    if result.fit is not None:
        fit = result.fit
        processor.counts["depth_fit_inliers"] = fit.inliers
        processor.counts["depth_fit_inlier_share"] = round(fit.inlier_fraction, 4)
        processor.counts["depth_fit_residual"] = round(fit.residual, 5) if np.isfinite(fit.residual) else "none"
    if result.depth_m is None:
        reason = result.fit.reason if result.fit is not None else (
            "no measured depth paired with this frame (topic depth) to fit the relative model's scale to")
        processor.note("depth_frames_without_fit", reason)
        return None
    if result.scale_from == "card" and result.fit is not None:
        processor.note("depth_frames_without_fit", f"{result.fit.reason}; the card's fixed scale was used")
    return result.depth_m
