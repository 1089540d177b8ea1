"""What a depth model's training saw (SPEC §4.2, §5), recorded in its checkpoint at training time so
that export writes it into the model metadata and the nodes use it:

- ``focal_length_px``: the training camera's focal length in pixels at the model's input size
  (f_train), from the frames' intrinsics (NYU layouts, real or synthetic: the NYU Kinect RGB camera
  at the frame's size); "unknown" when the data has none or mixes cameras;
- ``supervised``: the part of the input whose pixels had depth to learn from, as a box
  [top, left, bottom, right] in fractions of the input, or "full" (the synthetic generator's
  full-frame depth; a registered NYU depth leaves a border without readings, never supervised);
- ``resize``: "crop": frames of another aspect than the model's are centre-cropped to it, never
  stretched (:class:`AspectFrames`), as the stage does with a camera's images.
"""

from __future__ import annotations

import numpy as np

from rgbd_vae_ros.processing import resize_depth, valid_depth_mask

from ..data.frame import same_aspect

__all__ = ["AspectFrames", "training_geometry"]

NYU_LAYOUTS = ("nyu-raw", "nyu-mat", "densedepth")  # frames of the NYU Kinect's RGB camera
GEOMETRY_FRAMES = 64  # frames (evenly spaced) the supervised region and focal length are read from
# A row or column counts as supervised when its pixels had depth in at least this share of the
# frames, relative to the median row or column (holes and far walls come and go; a border never fills).
SUPERVISED_SHARE = 0.25
FOCAL_SPREAD = 0.02  # frames whose focal lengths differ more than this come from different cameras


def centre_crop_box(height: int, width: int, aspect_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width): the largest centred crop of an ``height`` x ``width``
    frame with the aspect of ``aspect_hw``; the whole frame when it has that aspect already."""
    ah, aw = aspect_hw
    if same_aspect(height, width, aspect_hw):
        return 0, 0, height, width
    if height * aw > width * ah:  # taller than the model's aspect: cut rows
        crop_h = max(1, round(width * ah / aw))
        return (height - crop_h) // 2, 0, crop_h, width
    crop_w = max(1, round(height * aw / ah))
    return 0, (width - crop_w) // 2, height, crop_w


class AspectFrames:
    """A reader's frames centre-cropped to the model's aspect (never stretched), with their
    intrinsics (fx, fy, cx, cy) filled in for NYU layouts and moved with the crop."""

    def __init__(self, reader, height: int, width: int, layout: str):
        self.reader, self.aspect_hw, self.layout = reader, (height, width), layout

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int):
        import dataclasses

        frame = self.reader[index]
        h, w = frame.rgb_u8.shape[:2]
        k = frame.intrinsics
        if k is None and self.layout in NYU_LAYOUTS:
            from ..data.nyu_calibration import intrinsics

            k = intrinsics("rgb", w, h)
        top, left, crop_h, crop_w = centre_crop_box(h, w, self.aspect_hw)
        if (crop_h, crop_w) == (h, w):
            return frame if k is frame.intrinsics else dataclasses.replace(frame, intrinsics=k)
        rows, cols = slice(top, top + crop_h), slice(left, left + crop_w)
        depth = None if frame.depth_m is None else np.ascontiguousarray(frame.depth_m[rows, cols])
        k = None if k is None else (k[0], k[1], k[2] - left, k[3] - top)
        return dataclasses.replace(frame, rgb_u8=np.ascontiguousarray(frame.rgb_u8[rows, cols]), depth_m=depth,
                                   intrinsics=k)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def training_geometry(frames: AspectFrames, height: int, width: int, max_depth_m: float, hflip: bool,
                      data_name: str) -> dict:
    """The ``depth_geometry`` of a model of input ``height`` x ``width`` trained on ``frames``
    (flipped left-right half the time when ``hflip``): see the module docstring."""
    count = len(frames)
    picked = np.unique(np.linspace(0, count - 1, min(count, GEOMETRY_FRAMES)).round().astype(int))
    seen = np.zeros((height, width), np.float64)
    focals = []
    for i in picked:
        frame = frames[int(i)]
        if frame.intrinsics is not None:
            focals.append(float(frame.intrinsics[0]) * width / frame.rgb_u8.shape[1])  # fx at the input size
        if frame.depth_m is not None:
            depth = resize_depth(frame.depth_m, height, width)
            with np.errstate(invalid="ignore"):
                seen += valid_depth_mask(depth) & (depth <= max_depth_m)
    rate = seen / len(picked)  # (H, W): share of frames with a depth to learn from, per pixel
    if hflip:
        rate = (rate + rate[:, ::-1]) / 2
    focal, why = "unknown", "the data records no camera intrinsics"
    if focals:
        spread = (max(focals) - min(focals)) / min(focals)
        if len(focals) == len(picked) and spread <= FOCAL_SPREAD:
            focal, why = round(float(np.median(focals)), 4), f"fx of the frames at {width}x{height}"
        else:
            why = f"frames of several cameras (focal lengths {min(focals):.1f}-{max(focals):.1f} px at the input)"
    return {"focal_length_px": focal, "supervised": supervised_box(rate), "resize": "crop",
            "trained_on": f"{data_name} ({count} frames; focal length: {why})"}


def supervised_box(rate: np.ndarray) -> str | list[float]:
    """The box of rows and columns whose pixels had depth often enough (see SUPERVISED_SHARE), as
    [top, left, bottom, right] fractions, "full", or "unknown" (no depth at all)."""
    height, width = rate.shape
    bounds = []
    for profile, size in ((rate.mean(axis=1), height), (rate.mean(axis=0), width)):
        kept = np.flatnonzero(profile >= SUPERVISED_SHARE * np.median(profile)) if profile.max() > 0 else []
        if len(kept) == 0:
            return "unknown"  # no depth at all: nothing to bound
        bounds.append((int(kept[0]), int(kept[-1]) + 1, size))
    (top, bottom, h), (left, right, w) = bounds
    if (top, left, bottom, right) == (0, 0, h, w):
        return "full"
    return [round(top / h, 6), round(left / w, 6), round(bottom / h, 6), round(right / w, 6)]
