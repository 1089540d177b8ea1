"""A generic folder of RGB images and 16-bit depth PNGs: ``rgb/`` (or ``color/``, ``image/``) beside
``depth/``, paired by file stem, or by sorted order where the stems differ and the counts agree.

The depth unit is the user's to give (``depth_scale``: depth units per metre, e.g. 1000 for
millimetres, 5000 for TUM); 0 = no reading. Intrinsics (fx, fy, cx, cy), where given, are
attached to every frame. No poses. One folder is one recording: every frame is in its train
split and none in its test split.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import DataError
from .frame import FrameReader, RGBDFrame
from .image_folder import IMAGE_SUFFIXES
from .png_files import is_depth_png, read_depth_u16, read_rgb, units_to_m

RGB_FOLDERS = ("rgb", "color", "colour", "image", "images")
DEPTH_FOLDER = "depth"


def _folders(root: Path) -> tuple[Path, Path] | None:
    rgb = next((root / n for n in RGB_FOLDERS if (root / n).is_dir()), None)
    depth = root / DEPTH_FOLDER
    return (rgb, depth) if rgb is not None and depth.is_dir() else None


def is_rgbd_png_folder(root: Path) -> bool:
    """An ``rgb/`` (or alike) folder beside a ``depth/`` folder holding 16-bit PNGs."""
    folders = _folders(root) if root.is_dir() else None
    return folders is not None and any(is_depth_png(p) for p in folders[1].glob("*.png"))


def pair_files(rgb_dir: Path, depth_dir: Path) -> list[tuple[Path, Path]]:
    """(rgb, depth) pairs: by stem, else by sorted order when the counts agree."""
    rgb = sorted(p for p in rgb_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_depth_png(p))
    depth = sorted(p for p in depth_dir.glob("*.png") if is_depth_png(p))
    by_stem = {p.stem: p for p in depth}
    if rgb and all(p.stem in by_stem for p in rgb):
        return [(p, by_stem[p.stem]) for p in rgb]
    if len(rgb) != len(depth) or not rgb:
        raise DataError(f"{str(rgb_dir)!r} has {len(rgb)} RGB images and {str(depth_dir)!r} {len(depth)} 16-bit depth "
                        "PNGs with other names; expected matching file names or equal counts")
    return list(zip(rgb, depth))


class RGBDPngFolder(FrameReader):
    def __init__(self, root: str | os.PathLike, depth_scale: float | None = None,
                 intrinsics: tuple[float, float, float, float] | None = None, split: str | None = None):
        root = Path(root)
        folders = _folders(root) if root.is_dir() else None
        if folders is None:
            raise DataError(f"{str(root)!r} holds no rgb/ and depth/ folders; expected an RGB + depth PNG folder")
        if depth_scale is None or not math.isfinite(depth_scale) or depth_scale <= 0:
            raise DataError(f"depth scale {depth_scale!r} for {str(root)!r} is not a positive number; give "
                            "--depth-scale, the depth units per metre (1000 for millimetres, 5000 for TUM)")
        if intrinsics is not None and (len(intrinsics) != 4 or not all(math.isfinite(v) for v in intrinsics)
                                       or intrinsics[0] <= 0 or intrinsics[1] <= 0):
            raise DataError(f"intrinsics {tuple(intrinsics)!r} are not (fx, fy, cx, cy) with positive focal lengths")
        self.root, self.depth_scale = root, float(depth_scale)
        self.intrinsics = None if intrinsics is None else tuple(float(v) for v in intrinsics)
        if split not in (None, "all", "train", "test"):
            raise DataError(f"split {split!r} is unknown; expected 'train', 'test' or 'all'")
        # one folder, one recording: no held-out part of it, so its test split is empty
        self.pairs = [] if split == "test" else pair_files(*folders)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> RGBDFrame:
        rgb_path, depth_path = self.pairs[index]
        rgb = read_rgb(rgb_path)
        depth_m = units_to_m(read_depth_u16(depth_path), self.depth_scale)
        if depth_m.shape != rgb.shape[:2]:
            raise DataError(f"{depth_path.name} is {depth_m.shape[1]}x{depth_m.shape[0]} but {rgb_path.name} is "
                            f"{rgb.shape[1]}x{rgb.shape[0]}; expected registered images of equal size")
        return RGBDFrame(rgb, depth_m, scene=self.root.name, intrinsics=self.intrinsics)
