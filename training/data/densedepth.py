"""The DenseDepth NYU layout: ``data/nyu2_train.csv`` and ``data/nyu2_test.csv`` naming image pairs.

Train depth is an 8-bit PNG (metres = value / 255 * 10); test depth a 16-bit PNG in millimetres.
Reads an extracted folder or the zip itself.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame

CSV_NAMES = {"train": "nyu2_train.csv", "test": "nyu2_test.csv"}


class _Source:
    """Files inside a folder or a zip, by their path relative to the layout's root."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None
        names = self.zip.namelist() if self.zip else [p.relative_to(path).as_posix() for p in path.rglob("*.csv")]
        self.names = names

    def find(self, basename: str) -> str | None:
        return next((n for n in self.names if n.rsplit("/", 1)[-1] == basename), None)

    def read(self, name: str) -> bytes:
        if not self.zip and not (self.path / name).resolve().is_relative_to(self.path.resolve()):
            raise DataError(f"{name!r}, named in the DenseDepth CSV, leads outside {str(self.path)!r} through a "
                            "link; expected files inside the data folder")
        try:
            return self.zip.read(name) if self.zip else (self.path / name).read_bytes()
        except (KeyError, OSError):
            raise DataError(f"{name!r}, named in the DenseDepth CSV, is missing from {str(self.path)!r}") from None


def _check_inside(name: str, csv_name: str, row: int) -> None:
    """A CSV path must stay inside the data folder: relative, with no ``..`` step."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{csv_name} row {row} names {name!r}, a path outside the data folder; "
                        "expected paths relative to it, without '..'")


def is_densedepth(path: Path) -> bool:
    if path.is_file():
        return zipfile.is_zipfile(path) and any(n.endswith(tuple(CSV_NAMES.values())) for n in zipfile.ZipFile(path).namelist())
    return path.is_dir() and (any(path.rglob(CSV_NAMES["train"])) or any(path.rglob(CSV_NAMES["test"])))


class DenseDepthNYU(FrameReader):
    def __init__(self, path: str | os.PathLike, split: str = "train"):
        path = Path(path)
        if not path.exists():
            raise DataError(f"DenseDepth data {str(path)!r} does not exist")
        if split not in CSV_NAMES:
            raise DataError(f"split {split!r} is unknown; expected 'train' or 'test'")
        self.source, self.split = _Source(path), split
        csv_name = self.source.find(CSV_NAMES[split])
        if csv_name is None:
            raise DataError(f"{str(path)!r} has no {CSV_NAMES[split]}; expected the DenseDepth nyu_data layout")
        self.root = csv_name.rsplit("/", 2)[0] + "/" if csv_name.count("/") >= 2 else ""
        rows = [line.strip().split(",") for line in self.source.read(csv_name).decode().splitlines() if line.strip()]
        bad = next((r for r in rows if len(r) != 2), None)
        if bad is not None:
            raise DataError(f"{CSV_NAMES[split]} has a row {','.join(bad)!r}; expected 'rgb_path,depth_path'")
        for number, row in enumerate(rows, 1):
            for name in row:
                _check_inside(name, CSV_NAMES[split], number)
        self.rows = rows

    @property
    def frame_scenes(self) -> list[str]:
        """The scene of each frame, from its RGB file's folder ('' where the CSV names a file at the top)."""
        return [_scene_of(rgb_name) for rgb_name, _ in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, name: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            return np.asarray(Image.open(io.BytesIO(self.source.read(self.root + name))))
        except UnidentifiedImageError:
            raise DataError(f"{name!r} is not a readable image") from None

    def __getitem__(self, index: int) -> RGBDFrame:
        rgb_name, depth_name = self.rows[index]
        rgb = self._image(rgb_name)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        depth_raw = self._image(depth_name)
        if self.split == "train":
            depth = depth_raw.astype(np.float32) / 255.0 * 10.0
        else:
            depth = depth_raw.astype(np.float32) / 1000.0
        depth[depth <= 0] = np.nan
        return RGBDFrame(np.ascontiguousarray(rgb[:, :, :3]), depth, scene=_scene_of(rgb_name))


def _scene_of(rgb_name: str) -> str:
    """The NYU scene of a frame: its folder without DenseDepth's ``_out`` (``basement_0001a_out`` ->
    ``basement_0001a``, so that the sessions of one room are one room, :func:`.splits.room_of`)."""
    folder = rgb_name.split("/")[-2] if "/" in rgb_name else ""
    return folder.removesuffix("_out")

