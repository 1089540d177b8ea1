"""One sample as every reader returns it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RGBDFrame:
    """RGB (H, W, 3) uint8 and depth (H, W) float32 metres, NaN = no reading (None: RGB only)."""

    rgb_u8: np.ndarray
    depth_m: np.ndarray | None
    scene: str = ""
    stamp_s: float | None = None
    label: int | None = None
    pose: np.ndarray | None = None  # (4, 4) float64 camera-to-world, where the data set has ground truth
    intrinsics: tuple[float, float, float, float] | None = None  # (fx, fy, cx, cy) of rgb_u8, 0-based pixels


class FrameReader:
    """Base of the readers: indexable by frame, and iterable as a plain sequence of frames."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> RGBDFrame:
        raise NotImplementedError

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
