"""What the RGB-D sequence readers share: RGB and 16-bit depth images, index-file paths that must
stay inside the data folder, and telling a depth PNG from an RGB image without decoding it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from .errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY = 0  # PNG colour type of a single-channel image


def is_depth_png(path: Path) -> bool:
    """A 16-bit single-channel PNG (read from its header): depth, never an RGB image."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    # signature, IHDR length + type, width, height, then bit depth and colour type
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16 \
        and head[25] == _GREY


def read_rgb(path: Path) -> np.ndarray:
    """An RGB image as (H, W, 3) uint8; grey becomes RGB; a depth PNG is refused."""
    from PIL import Image, UnidentifiedImageError

    if is_depth_png(path):
        raise DataError(f"{str(path)!r} is a 16-bit depth PNG; expected an RGB image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"RGB image {str(path)!r} is missing") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{str(path)!r} is not a readable RGB image: {exc}") from None


def read_depth_u16(path: Path) -> np.ndarray:
    """A 16-bit single-channel PNG as (H, W) uint16 (raw sensor units)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            values = np.asarray(image)
    except FileNotFoundError:
        raise DataError(f"depth image {str(path)!r} is missing") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{str(path)!r} is not a readable depth PNG: {exc}") from None
    if mode not in ("I;16", "I;16B", "I") or values.ndim != 2:
        raise DataError(f"{str(path)!r} is a {mode} image; expected a 16-bit single-channel depth PNG")
    return values.astype(np.uint16)


def units_to_m(raw: np.ndarray, units_per_m: float, no_reading: tuple[int, ...] = (0,)) -> np.ndarray:
    """Raw depth units to float32 metres, NaN where the value is a no-reading code."""
    depth_m = raw.astype(np.float32) / np.float32(units_per_m)
    depth_m[np.isin(raw, no_reading)] = np.nan
    return depth_m


def inside(root: Path, name: str, named_in: str) -> Path:
    """``root / name`` for a path read from ``named_in``; a path that leaves ``root`` is refused."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{named_in} names {name!r}, a path outside the data folder {str(root)!r}; "
                        "expected a path relative to it, without '..'")
    path = root / posix
    if not path.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{name!r}, named in {named_in}, leads outside {str(root)!r} through a link; "
                        "expected files inside the data folder")
    return path


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise DataError(f"{what} {str(path)!r} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {str(path)!r} is not readable text: {exc}") from None


def read_matrix(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A whitespace-separated matrix of ``shape`` from a text file, float64."""
    text = read_text(path, what)
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise DataError(f"{what} {str(path)!r} holds something other than numbers; "
                        f"expected a {shape[0]}x{shape[1]} matrix") from None
    if values.size != shape[0] * shape[1] or not np.all(np.isfinite(values)):
        raise DataError(f"{what} {str(path)!r} holds {values.size} values; expected a finite "
                        f"{shape[0]}x{shape[1]} matrix")
    return values.reshape(shape)


def split_sequences(sequences: list[str], split: str | None) -> list[str]:
    """The sequences of ``split`` (None or 'all': every one) by :func:`split_scenes`."""
    from .splits import split_scenes

    if split in (None, "all"):
        return sequences
    if split not in ("train", "test"):
        raise DataError(f"split {split!r} is unknown; expected 'train', 'test' or 'all'")
    chosen = set(split_scenes(sequences)[split])
    return [s for s in sequences if s in chosen]


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of (H, W, 3) uint8 RGB or (H, W) uint16 depth (written as a 16-bit grey PNG)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()
