"""NYU Depth V2 raw scene folders: ``r-<time>-<n>.ppm`` RGB and ``d-<time>-<n>.pgm`` disparity.

Depth-primary synchronisation as the toolbox's ``get_synched_frames``: every depth frame takes
the RGB frame nearest in time. As the toolbox's ``project_depth_map`` does, both images are
undistorted with the calibration's lens coefficients (so a CameraInfo with D = 0 tells the truth),
the depth is converted to metres and registered to the RGB camera (:func:`register_depth_to_rgb`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame
from .netpbm import read_pgm, read_ppm
from .nyu_calibration import NO_READING, disparity_to_m, register_depth_to_rgb, undistort_raw_depth, undistort_rgb

_NAME = re.compile(r"^([rd])-(\d+(?:\.\d+)?)-(\d+)\.(ppm|pgm)$")


@dataclass(frozen=True)
class SyncedPair:
    depth_path: Path
    rgb_path: Path
    depth_stamp_s: float
    rgb_stamp_s: float


def _stamped_files(scene_dir: Path) -> tuple[list[tuple[float, Path]], list[tuple[float, Path]]]:
    rgb, depth = [], []
    for path in scene_dir.iterdir():
        match = _NAME.match(path.name)
        if match is None:
            continue
        kind, stamp = match.group(1), float(match.group(2))
        if (kind, match.group(4)) == ("r", "ppm"):
            rgb.append((stamp, path))
        elif (kind, match.group(4)) == ("d", "pgm"):
            depth.append((stamp, path))
    return sorted(rgb), sorted(depth)


def synchronise(scene_dir: str | os.PathLike) -> list[SyncedPair]:
    """Pairs of (depth, nearest-in-time RGB) for one scene folder, in depth-time order."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise DataError(f"NYU raw scene folder {str(scene_dir)!r} does not exist")
    rgb, depth = _stamped_files(scene_dir)
    if not depth:
        raise DataError(f"scene folder {str(scene_dir)!r} has no depth frames (d-<time>-<n>.pgm)")
    if not rgb:
        raise DataError(f"scene folder {str(scene_dir)!r} has no RGB frames (r-<time>-<n>.ppm)")
    rgb_stamps = np.array([stamp for stamp, _ in rgb])
    pairs = []
    for stamp, path in depth:
        nearest = int(np.argmin(np.abs(rgb_stamps - stamp)))
        pairs.append(SyncedPair(path, rgb[nearest][1], stamp, rgb[nearest][0]))
    return pairs


def is_raw_scene(path: Path) -> bool:
    return path.is_dir() and any(_NAME.match(p.name) and p.name.startswith("d-") for p in path.iterdir())


def scene_folders(root: Path) -> list[Path]:
    """The scene folders in ``root``; hidden ones are a writer's unfinished staging, never data."""
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and is_raw_scene(p))


class NYURawScenes(FrameReader):
    """Frames of one or more NYU raw scene folders (a scene folder, or a folder of them)."""

    def __init__(self, root: str | os.PathLike, scenes: list[str] | None = None):
        root = Path(root)
        if is_raw_scene(root):
            scene_dirs = [root]
        elif root.is_dir():
            scene_dirs = scene_folders(root)
        else:
            raise DataError(f"NYU raw data folder {str(root)!r} does not exist")
        if scenes is not None:
            scene_dirs = [d for d in scene_dirs if d.name in set(scenes)]
        if not scene_dirs:
            raise DataError(f"{str(root)!r} holds no NYU raw scene folder with depth frames (d-<time>-<n>.pgm)")
        self.root = root
        self.pairs: list[tuple[str, SyncedPair]] = [(d.name, p) for d in scene_dirs for p in synchronise(d)]

    @property
    def scenes(self) -> list[str]:
        return list(dict.fromkeys(scene for scene, _ in self.pairs))

    @property
    def frame_scenes(self) -> list[str]:
        return [scene for scene, _ in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def read_raw(self, index: int) -> np.ndarray:
        """The recorded 11-bit disparity of frame ``index``, as stored (distorted)."""
        path = self.pairs[index][1].depth_path
        raw = read_pgm(path)
        if raw.size and int(raw.max()) > NO_READING:
            raise DataError(f"{path.name} holds values up to {int(raw.max())}, beyond the Kinect's 11 bits "
                            f"(0-{NO_READING}): its samples are big-endian as in a standard PGM, but NYU raw "
                            "depth is stored little-endian; write it back in the recorder's byte order")
        return raw

    def read_ir_depth_m(self, index: int) -> np.ndarray:
        """Depth in the IR camera's frame (undistorted, not registered), metres, NaN = no reading."""
        return disparity_to_m(undistort_raw_depth(self.read_raw(index)))

    def __getitem__(self, index: int) -> RGBDFrame:
        scene, pair = self.pairs[index]
        rgb = undistort_rgb(read_ppm(pair.rgb_path))
        depth_ir = self.read_ir_depth_m(index)
        if depth_ir.shape != rgb.shape[:2]:
            raise DataError(f"{pair.depth_path.name} is {depth_ir.shape[1]}x{depth_ir.shape[0]} but "
                            f"{pair.rgb_path.name} is {rgb.shape[1]}x{rgb.shape[0]}; expected equal sizes")
        return RGBDFrame(rgb, register_depth_to_rgb(depth_ir), scene=scene, stamp_s=pair.depth_stamp_s)

