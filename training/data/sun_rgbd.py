"""SUN RGB-D: one folder per frame holding ``image/*.jpg``, ``depth/*.png`` (or only the filled
``depth_bfx/*.png``) and ``intrinsics.txt`` (3x3 camera matrix of the colour camera, MATLAB 1-based pixels).

The depth PNG's 16-bit values are stored with their bits rotated: the toolbox's
``read3dPoints`` turns them back with ``bitor(bitshift(v, -3), bitshift(v, 16 - 3))`` and then
reads millimetres; 0 = no reading. Depth is registered to the colour image. SUN RGB-D has no
camera trajectories, so frames carry no pose.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame
from .png_files import read_depth_u16, read_matrix, read_rgb, split_sequences, units_to_m

DEPTH_UNITS_PER_M = 1000.0
INTRINSICS_NAME = "intrinsics.txt"
DEPTH_FOLDERS = ("depth", "depth_bfx")  # raw first; the hole-filled one where the raw is absent


def unrotate_depth(stored: np.ndarray) -> np.ndarray:
    """SUN RGB-D's stored PNG values to millimetres: a 16-bit rotation right by 3 bits."""
    v = stored.astype(np.uint16)
    return (v >> np.uint16(3)) | (v << np.uint16(13))


def rotate_depth(depth_mm: np.ndarray) -> np.ndarray:
    """Millimetres to the values SUN RGB-D stores (rotation left by 3 bits), for writers and tests."""
    v = depth_mm.astype(np.uint16)
    return (v << np.uint16(3)) | (v >> np.uint16(13))


def _one_file(folder: Path, suffixes: tuple[str, ...]) -> Path | None:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes) if folder.is_dir() else []
    return files[0] if files else None


def is_sun_frame(path: Path) -> bool:
    return (path / INTRINSICS_NAME).is_file() and (path / "image").is_dir() \
        and any((path / name).is_dir() for name in DEPTH_FOLDERS)


def sun_frames(root: Path) -> list[Path]:
    """Every frame folder at or below ``root`` (hidden folders are staging, never data)."""
    if is_sun_frame(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if is_sun_frame(Path(dirpath)):
            found.append(Path(dirpath))
            dirnames[:] = []
    return sorted(found)


class SUNRGBD(FrameReader):
    """SUN RGB-D frame folders (a frame folder, or any folder above them)."""

    def __init__(self, root: str | os.PathLike, split: str | None = None):
        root = Path(root)
        if not root.exists():
            raise DataError(f"SUN RGB-D data {str(root)!r} does not exist")
        folders = sun_frames(root)
        if not folders:
            raise DataError(f"{str(root)!r} holds no SUN RGB-D frame folder; expected image/, depth/ and "
                            f"{INTRINSICS_NAME}")
        self.root = root
        names = {str(f.relative_to(root)) if f != root else f.name: f for f in folders}
        self.folders = [names[n] for n in split_sequences(list(names), split)]

    @property
    def frame_scenes(self) -> list[str]:
        return [f.name for f in self.folders]

    def __len__(self) -> int:
        return len(self.folders)

    def __getitem__(self, index: int) -> RGBDFrame:
        folder = self.folders[index]
        image = _one_file(folder / "image", (".jpg", ".jpeg", ".png"))
        depth = next((p for name in DEPTH_FOLDERS if (p := _one_file(folder / name, (".png",))) is not None), None)
        if image is None or depth is None:
            raise DataError(f"SUN RGB-D frame {str(folder)!r} lacks its {'image' if image is None else 'depth'} "
                            "file; expected image/*.jpg and depth/*.png")
        rgb = read_rgb(image)
        depth_m = units_to_m(unrotate_depth(read_depth_u16(depth)), DEPTH_UNITS_PER_M)
        if depth_m.shape != rgb.shape[:2]:
            raise DataError(f"{depth.name} is {depth_m.shape[1]}x{depth_m.shape[0]} but {image.name} is "
                            f"{rgb.shape[1]}x{rgb.shape[0]}; expected registered images of equal size")
        k = read_matrix(folder / INTRINSICS_NAME, (3, 3), "SUN RGB-D intrinsics")
        # the toolbox's pixel grid starts at 1 (MATLAB); frames use 0-based pixel centres
        return RGBDFrame(rgb, depth_m, scene=folder.name, intrinsics=(k[0, 0], k[1, 1], k[0, 2] - 1, k[1, 2] - 1))
