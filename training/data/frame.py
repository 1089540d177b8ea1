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
