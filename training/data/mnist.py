"""MNIST IDX files (``train-images-idx3-ubyte`` etc., optionally gzipped) with labels."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame

_MAGIC_IMAGES, _MAGIC_LABELS = 0x00000803, 0x00000801
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX array (big-endian header: magic, dims) as uint8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{str(path)!r} is not an unsigned-byte IDX file (magic {raw[:4].hex()!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{str(path)!r} is truncated inside its header ({ndim} dimensions promised)")
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise DataError(f"{str(path)!r} holds {len(body)} bytes of data; its header promises {int(np.prod(dims))}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def is_mnist(path: Path) -> bool:
    return path.is_dir() and any(_find(path, images) for images, _ in FILES.values())


class MNIST(FrameReader):
    """Digits as 28x28 grey replicated to RGB (no depth), with their class label."""

    def __init__(self, folder: str | os.PathLike, split: str = "train"):
        folder = Path(folder)
        images_name, labels_name = FILES[split]
        images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
        if images_path is None or labels_path is None:
            raise DataError(f"{str(folder)!r} lacks {images_name} or {labels_name} (optionally .gz)")
        self.images, self.labels = read_idx(images_path), read_idx(labels_path)
        if self.images.ndim != 3 or self.labels.ndim != 1 or len(self.images) != len(self.labels):
            raise DataError(f"{images_path.name} has shape {self.images.shape} and {labels_path.name} "
                            f"{self.labels.shape}; expected (N, 28, 28) and (N,)")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> RGBDFrame:
        grey = self.images[index]
        return RGBDFrame(np.repeat(grey[:, :, None], 3, axis=2), None, label=int(self.labels[index]))

