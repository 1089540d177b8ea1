"""Trivial codes of an RGB-D frame at a byte budget: what a latent code must beat to earn its bytes.

Each baseline turns a frame (RGB uint8, depth in metres, both at one size) into a number of bytes
and back into a frame of that size; ``bytes`` is what a sender would put on the wire per frame
(nothing shared per frame is counted twice; what is shared once, like a PCA basis or JPEG tables,
is stated in the baseline's ``note``):

- :class:`PCACodec` — principal components of the same input the VAE sees (RGB-D at the model's
  resolution, in the model's [-1, 1] range), fit on training frames, coefficients quantised like a
  latent (per component uniform, range from the training codes' 0.5-99.5 percentiles; 8 or 4 bits).
- :class:`Thumbnail` — an RGB thumbnail (8 bits per channel) and a depth thumbnail (8 bits,
  linear over [0, max depth]) of ``w`` x ``h`` pixels, upsampled bilinearly.
- :class:`ImageThumbnail` — a JPEG or WebP RGB thumbnail plus a depth thumbnail; JPEG counts only its
  entropy-coded data (tables and headers shared once per stream, as with abbreviated JPEG), WebP
  the whole file.

:func:`matched_baselines` picks, for a budget in bytes, the largest of each family that fits.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

from rgbd_vae_ros.processing import (
    depth_from_unit_range,
    depth_to_unit_range,
    resize_depth,
    resize_rgb,
    rgb_from_unit_range,
    rgb_to_unit_range,
)

# Thumbnail sizes tried, 4:3 first (the cameras' aspect), smallest first.
THUMBNAIL_SIZES = ((2, 2), (4, 3), (6, 4), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (32, 24), (40, 30),
                   (48, 36), (64, 48), (80, 60))


@dataclass
class Reconstruction:
    rgb_u8: np.ndarray
    depth_m: np.ndarray
    bytes: int


class Baseline:
    name: str = ""
    note: str = ""

    def roundtrip(self, rgb_u8: np.ndarray, depth_m: np.ndarray) -> Reconstruction:
        raise NotImplementedError


def _depth_u8(depth_m: np.ndarray, max_depth_m: float) -> np.ndarray:
    """Depth as 8 bits over [0, max_depth_m]; no reading -> 0 (never a valid code, see :func:`_depth_from_u8`)."""
    valid = np.isfinite(depth_m) & (depth_m > 0)
    codes = np.clip(np.rint(np.where(valid, depth_m, 0.0) / max_depth_m * 254.0) + 1, 1, 255)
    return np.where(valid, codes, 0).astype(np.uint8)


def _depth_from_u8(codes: np.ndarray, max_depth_m: float) -> np.ndarray:
    return np.where(codes > 0, (codes.astype(np.float32) - 1) / 254.0 * max_depth_m, np.nan).astype(np.float32)


@dataclass
class Thumbnail(Baseline):
    width: int
    height: int
    max_depth_m: float = 10.0

    def __post_init__(self):
        self.name = f"thumbnail {self.width}x{self.height}"
        self.note = "RGB and depth, 8 bits each, bilinear upsampling"

    def roundtrip(self, rgb_u8, depth_m):
        height, width = depth_m.shape
        small_rgb = resize_rgb(rgb_u8, self.height, self.width)
        small_depth = _depth_u8(resize_depth(depth_m, self.height, self.width), self.max_depth_m)
        return Reconstruction(resize_rgb(small_rgb, height, width),
                              resize_depth(_depth_from_u8(small_depth, self.max_depth_m), height, width),
                              small_rgb.nbytes + small_depth.nbytes)


def _jpeg_entropy_bytes(blob: bytes) -> int:
    """Bytes of a baseline JPEG's entropy-coded data: after the start-of-scan header, before EOI."""
    sos = blob.find(b"\xff\xda")
    length = int.from_bytes(blob[sos + 2:sos + 4], "big")
    return len(blob) - (sos + 2 + length) - 2


@dataclass
class ImageThumbnail(Baseline):
    fmt: str  # "JPEG" or "WEBP"
    width: int
    height: int
    quality: int
    depth: Thumbnail = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        self.name = f"{self.fmt.lower()} {self.width}x{self.height} q{self.quality} + depth " \
                    f"{self.depth.width}x{self.depth.height}"
        self.note = ("JPEG entropy-coded data only (tables shared once)" if self.fmt == "JPEG"
                     else "the whole WebP file") + "; depth 8 bits"

    def encode(self, rgb_u8: np.ndarray) -> tuple[np.ndarray, int]:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(resize_rgb(rgb_u8, self.height, self.width)).save(buffer, format=self.fmt,
                                                                           quality=self.quality)
        blob = buffer.getvalue()
        size = _jpeg_entropy_bytes(blob) if self.fmt == "JPEG" else len(blob)
        return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")), size

    def roundtrip(self, rgb_u8, depth_m):
        height, width = depth_m.shape
        small, size = self.encode(rgb_u8)
        depth_part = self.depth.roundtrip(rgb_u8, depth_m)
        return Reconstruction(resize_rgb(small, height, width), depth_part.depth_m,
                              size + self.depth.width * self.depth.height)


def frame_vector(rgb_u8: np.ndarray, depth_m: np.ndarray, max_depth_m: float) -> np.ndarray:
    """The frame as the VAE sees it, flattened: RGB and depth in [-1, 1]; no reading -> NaN (PCA fills
    it with the training mean, as the VAE's loss ignores it)."""
    depth_unit, valid = depth_to_unit_range(depth_m, max_depth_m)
    depth_unit = np.where(valid, depth_unit, np.nan)
    return np.concatenate([rgb_to_unit_range(rgb_u8).reshape(-1), depth_unit.reshape(-1)]).astype(np.float32)


@dataclass
class PCACodec(Baseline):
    """PCA of :func:`frame_vector` with ``dim`` components at ``bits`` bits each."""

    dim: int
    bits: int
    max_depth_m: float = 10.0
    mean: np.ndarray | None = None
    basis: np.ndarray | None = None  # (dim, features)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def __post_init__(self):
        self.name = f"PCA-{self.dim} q{self.bits}"
        self.note = "basis fit on the training frames (shared once)"

    def fit(self, vectors: np.ndarray) -> "PCACodec":
        vectors = np.asarray(vectors, dtype=np.float64)
        if len(vectors) < 2:
            raise ValueError("PCA needs at least 2 training frames")
        seen = np.isfinite(vectors)
        self.mean = np.where(seen.any(axis=0), np.nansum(vectors, axis=0) / np.maximum(seen.sum(axis=0), 1), 0.0)
        vectors = np.where(seen, vectors, self.mean)  # holes: the training mean (they carry no information)
        _, _, vt = np.linalg.svd(vectors - self.mean, full_matrices=False)
        self.dim = min(self.dim, len(vt))
        self.basis = vt[:self.dim]
        codes = (vectors - self.mean) @ self.basis.T
        self.lo, self.hi = np.percentile(codes, 0.5, axis=0), np.percentile(codes, 99.5, axis=0)
        self.hi = np.maximum(self.hi, self.lo + 1e-6)
        self.name = f"PCA-{self.dim} q{self.bits}"
        return self

    def roundtrip(self, rgb_u8, depth_m):
        height, width = depth_m.shape
        vector = frame_vector(rgb_u8, depth_m, self.max_depth_m)
        codes = (np.where(np.isfinite(vector), vector, self.mean) - self.mean) @ self.basis.T
        levels = 2 ** self.bits
        step = (self.hi - self.lo) / levels
        q = np.clip(np.floor((codes - self.lo) / step), 0, levels - 1)
        vector = self.mean + (self.lo + (q + 0.5) * step) @ self.basis
        rgb = rgb_from_unit_range(vector[:height * width * 3].reshape(height, width, 3).astype(np.float32))
        depth = depth_from_unit_range(vector[height * width * 3:].reshape(height, width).astype(np.float32),
                                      self.max_depth_m)
        return Reconstruction(rgb, depth, math.ceil(self.dim * self.bits / 8))


def largest_thumbnail(budget: int, per_pixel: int = 4) -> tuple[int, int] | None:
    fitting = [(w, h) for w, h in THUMBNAIL_SIZES if w * h * per_pixel <= budget]
    return max(fitting, key=lambda s: s[0] * s[1]) if fitting else None


def _best_image(fmt: str, budget: int, sample_rgb: list[np.ndarray], depth_size: tuple[int, int],
                max_depth_m: float) -> ImageThumbnail | None:
    """The largest ``fmt`` thumbnail (size, then quality) whose mean size on ``sample_rgb`` fits the budget."""
    depth = Thumbnail(*depth_size, max_depth_m=max_depth_m)
    room = budget - depth_size[0] * depth_size[1]
    best = None
    for w, h in THUMBNAIL_SIZES:
        for quality in (5, 10, 20, 30, 50, 75, 90):
            candidate = ImageThumbnail(fmt, w, h, quality, depth)
            size = np.mean([candidate.encode(rgb)[1] for rgb in sample_rgb])
            if size <= room and (best is None or (w * h, quality) > (best.width * best.height, best.quality)):
                best = candidate
    return best


def matched_baselines(budget: int, train_vectors: np.ndarray | None, sample_rgb: list[np.ndarray],
                      max_depth_m: float = 10.0, image_formats: tuple[str, ...] = ("JPEG", "WEBP")) -> list[Baseline]:
    """The baselines that fit ``budget`` bytes per frame: PCA at 8 and 4 bits (when training vectors
    are given), the largest raw thumbnail, and JPEG / WebP thumbnails with a 4x3 depth thumbnail."""
    out: list[Baseline] = []
    if train_vectors is not None:
        for bits in (8, 4):
            dim = budget * 8 // bits
            if dim >= 1:
                out.append(PCACodec(dim, bits, max_depth_m).fit(train_vectors))
    size = largest_thumbnail(budget)
    if size:
        out.append(Thumbnail(*size, max_depth_m=max_depth_m))
    for fmt in image_formats:
        image = _best_image(fmt, budget, sample_rgb, (4, 3), max_depth_m)
        if image is not None:
            out.append(image)
    return out
