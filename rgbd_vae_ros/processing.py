"""The one definition of pre/post-processing, shared by training, export and the nodes.

RGB uint8 <-> [-1, 1]; metric depth <-> [-1, 1] through ``max_depth_m`` with a validity mask;
resizing of RGB and of depth with missing readings. Pure numpy, no ROS, no torch.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np

__all__ = [
    "DECODED_READING_MIN",
    "colorize_depth",
    "decoded_planes",
    "depth_from_unit_range",
    "depth_to_unit_range",
    "resize_depth",
    "resize_planes",
    "resize_rgb",
    "rgb_from_unit_range",
    "rgb_to_unit_range",
    "valid_depth_mask",
]


def rgb_to_unit_range(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) to float32 in [-1, 1]."""
    return rgb_u8.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)


def rgb_from_unit_range(rgb_unit: np.ndarray) -> np.ndarray:
    """Float RGB in [-1, 1] (values outside are clipped) to uint8."""
    scaled = (np.asarray(rgb_unit, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def valid_depth_mask(depth_m: np.ndarray) -> np.ndarray:
    """True where a depth reading exists: finite and positive (REP 118: NaN/inf/0 mean none)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth_m) & (depth_m > 0)


def depth_to_unit_range(depth_m: np.ndarray, max_depth_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Metres to [-1, 1] (0 m -> -1, ``max_depth_m`` -> 1, clipped), and the validity mask.

    Invalid pixels get -1 in the normalised image; losses must use the mask.
    """
    valid = valid_depth_mask(depth_m)
    unit = np.where(valid, np.asarray(depth_m, dtype=np.float32), 0.0) * np.float32(2.0 / max_depth_m) - 1.0
    return np.clip(unit, -1.0, 1.0).astype(np.float32, copy=False), valid


def depth_from_unit_range(depth_unit: np.ndarray, max_depth_m: float) -> np.ndarray:
    """[-1, 1] back to metres in [0, max_depth_m]."""
    clipped = np.clip(np.asarray(depth_unit, dtype=np.float32), -1.0, 1.0)
    return ((clipped + 1.0) * np.float32(max_depth_m / 2.0)).astype(np.float32, copy=False)


# A decoded depth validity channel (tanh, [-1, 1]) at or above this says the encoded frame had a reading
# there: probability (v + 1) / 2 of at least one half.
DECODED_READING_MIN = 0.0


def decoded_planes(recon: np.ndarray, max_depth_m: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A VAE decoder's output (C, h, w) in [-1, 1] (RGB; RGB, depth, depth validity) as uint8 RGB (h, w, 3),
    depth in metres (h, w), and where it has one (bool); without a depth channel the last two are None.
    The depth is NaN where the validity channel is below 0 (the frame had no reading there, so the depth
    there is not one the decoder was trained to make) and where the depth channel is at the top of its
    range (max depth: "this far or farther", a clamped value, not a depth)."""
    rgb_u8 = rgb_from_unit_range(np.moveaxis(recon[:3], 0, -1))
    if recon.shape[0] < 5:
        return rgb_u8, None, None
    valid = (np.asarray(recon[4]) >= DECODED_READING_MIN) & (np.asarray(recon[3]) < 1.0)
    return rgb_u8, np.where(valid, depth_from_unit_range(recon[3], max_depth_m), np.float32(np.nan)), valid


def _build_resize_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) row-stochastic matrix: area averaging down, linear interpolation up."""
    weights = np.zeros((size_out, size_in), dtype=np.float32)
    if size_out <= size_in:  # each output pixel averages the input interval it covers
        scale = size_in / size_out
        for i in range(size_out):
            start, end = i * scale, (i + 1) * scale
            first, last = int(np.floor(start)), min(int(np.ceil(end)), size_in)
            for j in range(first, last):
                weights[i, j] = min(end, j + 1) - max(start, j)
    else:  # pixel-centre aligned linear interpolation, clamped at the borders
        centres = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
        centres = np.clip(centres, 0, size_in - 1)
        left = np.floor(centres).astype(int)
        right = np.minimum(left + 1, size_in - 1)
        frac = (centres - left).astype(np.float32)
        weights[np.arange(size_out), left] += 1 - frac
        weights[np.arange(size_out), right] += frac
    weights /= weights.sum(axis=1, keepdims=True)
    weights.setflags(write=False)
    return weights


class _WeightCache:
    """Resize matrices by (size_in, size_out), bounded in bytes, least recently used evicted first.

    A stream of one frame size hits the same two entries every frame; a stream of ever-changing
    sizes (a cropping node upstream, a fuzzer) cannot grow memory past ``max_bytes``.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._entries: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # executor threads of several nodes may resize at once

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, size_in: int, size_out: int) -> np.ndarray:
        key = (size_in, size_out)
        with self._lock:
            weights = self._entries.get(key)
            if weights is not None:
                self._entries.move_to_end(key)
                return weights
        weights = _build_resize_weights(size_in, size_out)
        if weights.nbytes > self.max_bytes:  # too big to keep: rebuilt on each use
            return weights
        with self._lock:
            if key in self._entries:  # another thread built it meanwhile
                return self._entries[key]
            self._entries[key] = weights
            self.nbytes += weights.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
        return weights

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0


_RESIZE_WEIGHTS = _WeightCache(max_bytes=32 << 20)


def _resize_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) row-stochastic matrix, shared read-only from a cache of at most 32 MiB."""
    return _RESIZE_WEIGHTS.get(size_in, size_out)


@functools.lru_cache(maxsize=32)
def _resize_band(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero band of the (size_out, size_in) resize matrix: input indices and weights, each
    (taps, size_out); a tap past the input's end has weight 0."""
    weights = _resize_weights(size_in, size_out)
    nonzero = weights > 0
    first = nonzero.argmax(axis=1)
    taps = int((size_in - nonzero[:, ::-1].argmax(axis=1) - first).max())
    index = first[:, None] + np.arange(taps)  # (size_out, taps)
    band = np.take_along_axis(weights, np.minimum(index, size_in - 1), axis=1)
    band[index >= size_in] = 0.0
    index, band = np.minimum(index, size_in - 1).T.copy(), band.T.copy()
    index.setflags(write=False), band.setflags(write=False)
    return index, band


def _shrink_along(planes: np.ndarray, axis: int, size_out: int) -> np.ndarray:
    """float32 planes resized along ``axis`` by the band of their resize matrix: a few taps per
    output pixel instead of a dense product (640 -> 80 reads 9 inputs per output, not 640)."""
    index, band = _resize_band(planes.shape[axis], size_out)
    shape = [1] * planes.ndim
    shape[axis] = size_out
    out = band[0].reshape(shape) * np.take(planes, index[0], axis=axis)
    for tap in range(1, len(index)):
        out += band[tap].reshape(shape) * np.take(planes, index[tap], axis=axis)
    return out


def resize_planes(planes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, C) planes with separable weights: Wy @ planes @ Wx^T (float32 out; a shrink
    also takes uint8 planes as they are, without a float copy of the whole frame)."""
    rows_in, cols_in, channels = planes.shape
    if height <= rows_in and width <= cols_in:
        # Shrinking (a camera frame to a model's input): the rows first, which leaves an eighth of
        # the frame for the columns; 2.5-4x faster than two dense matrix products at 640x480.
        return _shrink_along(_shrink_along(planes, 0, height), 1, width)
    wy = _resize_weights(rows_in, height)
    wx = _resize_weights(cols_in, width)
    return np.einsum("oh,hwc,pw->opc", wy, planes.astype(np.float32, copy=False), wx, optimize=True)


def resize_rgb(rgb_u8: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) to (height, width, 3); area average when shrinking."""
    if rgb_u8.shape[:2] == (height, width):
        return rgb_u8
    out = resize_planes(rgb_u8, height, width)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_depth(depth_m: np.ndarray, height: int, width: int, min_valid_fraction: float = 0.5) -> np.ndarray:
    """Metric depth (H, W) to (height, width), averaging only valid readings.

    An output pixel whose footprint is less than ``min_valid_fraction`` valid becomes NaN, so
    holes stay holes instead of being smeared towards zero.
    """
    if depth_m.shape == (height, width):
        return depth_m.astype(np.float32, copy=False)
    valid = valid_depth_mask(depth_m)
    if valid.all():  # a model's estimate mostly: the weight plane would be all ones, so half the work
        return resize_planes(depth_m.astype(np.float32, copy=False)[..., None], height, width)[..., 0]
    planes = np.stack([np.where(valid, depth_m, 0.0), valid], axis=-1).astype(np.float32)
    out = resize_planes(planes, height, width)
    weight = out[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        depth = out[..., 0] / weight
    return np.where(weight >= min_valid_fraction, depth, np.nan).astype(np.float32)


# Anchor colours of the depth colour map, near (dark blue) to far (dark red), evenly spaced.
_DEPTH_COLOURS = np.array([[48, 18, 59], [50, 110, 230], [30, 200, 200], [120, 250, 80],
                           [240, 200, 40], [240, 100, 20], [122, 4, 3]], dtype=np.float32)
_DEPTH_LUT = np.stack([np.interp(np.linspace(0, len(_DEPTH_COLOURS) - 1, 256), np.arange(len(_DEPTH_COLOURS)),
                                 _DEPTH_COLOURS[:, c]) for c in range(3)], axis=-1).round().astype(np.uint8)


def colorize_depth(depth_m: np.ndarray, max_depth_m: float) -> np.ndarray:
    """Depth (H, W) to an rgb8 picture (H, W, 3): blue near, red at ``max_depth_m``; black = no reading."""
    valid = valid_depth_mask(depth_m)
    index = np.clip(np.where(valid, depth_m, 0.0) * (255.0 / max_depth_m), 0, 255).astype(np.uint8)
    rgb = _DEPTH_LUT[index]
    rgb[~valid] = 0
    return rgb
