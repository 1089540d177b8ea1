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


def same_aspect(height: int, width: int, aspect_hw: tuple[int, int]) -> bool:
    """Whether a ``height`` x ``width`` frame has the aspect of ``aspect_hw`` to about a pixel."""
    ah, aw = aspect_hw
    return abs(height * aw - width * ah) <= max(ah, aw)


class FrameReader:
    """Base of the readers: indexable by frame, and iterable as a plain sequence of frames."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> RGBDFrame:
        raise NotImplementedError

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def frame_scenes_of(reader) -> list[str] | None:
    """The scene of each of ``reader``'s frames, without reading them; None where the reader does not
    know its frames' scenes (MNIST, an image folder) or some frame has none."""
    scenes = getattr(reader, "frame_scenes", None)
    return list(scenes) if scenes is not None and all(scenes) else None


class FrameSubset(FrameReader):
    """The frames ``indices`` of ``reader``, in that order (the training frames not held back to validate on)."""

    def __init__(self, reader, indices):
        self.reader, self.indices = reader, [int(i) for i in indices]

    @property
    def frame_scenes(self) -> list[str] | None:
        scenes = frame_scenes_of(self.reader)
        return None if scenes is None else [scenes[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> RGBDFrame:
        return self.reader[self.indices[index]]
