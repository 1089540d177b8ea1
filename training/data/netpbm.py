"""PPM/PGM files as the NYU Kinect recorder writes them.

The 16-bit depth PGMs store samples little-endian, against the PGM standard (which says
big-endian); the NYU toolbox swaps bytes after a standard read. ``read_pgm`` defaults to the
NYU order; ``byte_order=">"`` gives what a standard reader would see.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .errors import DataError

_HEADER = re.compile(rb"\A(P[56])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)\s")


def _read(path: str | os.PathLike, magic: bytes, byte_order: str) -> np.ndarray:
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    header = _HEADER.match(blob[:200])
    if header is None or header.group(1) != magic:
        found = blob[:2].decode("latin-1") if blob else "an empty file"
        raise DataError(f"{str(path)!r} is not a {magic.decode()} {'PPM' if magic == b'P6' else 'PGM'} file "
                        f"(it starts with {found!r})")
    width, height, maxval = (int(header.group(i)) for i in (2, 3, 4))
    if not (0 < maxval < 65536) or width == 0 or height == 0:
        raise DataError(f"{str(path)!r} has an invalid header: {width}x{height}, maxval {maxval}")
    channels = 3 if magic == b"P6" else 1
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(byte_order + "u2")
    expected = width * height * channels * dtype.itemsize
    body = blob[header.end():]
    if len(body) < expected:
        raise DataError(f"{str(path)!r} is truncated: {len(body)} bytes of pixels, expected {expected} "
                        f"for {width}x{height}")
    pixels = np.frombuffer(body, dtype=dtype, count=width * height * channels)
    shape = (height, width, channels) if channels == 3 else (height, width)
    return pixels.reshape(shape).astype(dtype.newbyteorder("="))


def read_ppm(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit binary PPM as (H, W, 3) uint8."""
    return _read(path, b"P6", ">")


def read_pgm(path: str | os.PathLike, byte_order: str = "<") -> np.ndarray:
    """A binary PGM as (H, W); 16-bit samples in ``byte_order`` ('<' = the NYU Kinect files)."""
    return _read(path, b"P5", byte_order)


def encode_ppm(rgb_u8: np.ndarray) -> bytes:
    height, width = rgb_u8.shape[:2]
    return b"P6\n%d %d\n255\n" % (width, height) + np.ascontiguousarray(rgb_u8, dtype=np.uint8).tobytes()


def encode_nyu_pgm(raw_u16: np.ndarray) -> bytes:
    """A 16-bit PGM with little-endian samples, byte for byte like the NYU Kinect recorder's."""
    height, width = raw_u16.shape
    return b"P5\n%d %d\n65535\n" % (width, height) + np.ascontiguousarray(raw_u16, dtype="<u2").tobytes()
