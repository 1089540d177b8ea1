"""The latent message of SPEC §4.3, built and parsed for the nodes and for consumers (SLAM nodes).

``latent`` is a ``sensor_msgs/CompressedImage`` whose ``format`` describes its ``data``::

    rgbd_vae_latent; v=1; dim=64; codec=q8; depth=measured; model=0123456789ab

``data`` is the mean μ of the code: little-endian float32 (``f32``) or float16 (``f16``), or
per-dimension uniform codes (``q8``: one byte per dimension; ``q4``: two dimensions per byte, low
nibble first). With ``f32``/``f16`` log σ² may follow μ (same dtype). The value of a code c with b
bits is ``lo + (c + 0.5)(hi - lo) / 2**b``, with the per-dimension ``lo``/``hi`` of the model's
:class:`Quantiser` (fit at export, stored in the model metadata, published latched on
``latent/info``). A value outside [lo, hi] saturates to the end code: that is the quantisation of a
code, not an error.

    fmt, mu, logvar = parse_latent_message(msg, quantiser)   # quantiser: needed for q8 / q4
    model_id, quantiser = parse_info_message(info_msg)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CODECS", "DEPTH_SOURCES", "INFO_PREFIX", "LatentError", "LatentFormat", "PREFIX", "Quantiser",
           "build_info_message", "build_latent_message", "decode", "encode", "model_id", "parse_format",
           "parse_info_message", "parse_latent_message"]

CODECS = ("f32", "f16", "q8", "q4")
DEPTH_SOURCES = ("measured", "estimated", "none")
PREFIX, INFO_PREFIX, VERSION = "rgbd_vae_latent", "rgbd_vae_latent_info", "1"
_BITS = {"q8": 8, "q4": 4}
_FLOAT = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2")}
_MODEL_ID = re.compile(r"[0-9a-f]{12}")
MAX_DIM = 1 << 16  # far beyond any latent; guards the allocation a hostile 'dim=' would ask for
# Percentiles of the training μ that bound the quantiser (per dimension): robust to an outlier or
# two, which saturate to the end codes. Wide enough for q8, the default codec: at (0.5, 99.5) the
# 1 % of codes saturated cost the place-trained demo VAE 0.09 dB of RGB PSNR at q8 on held-out
# frames (21.96 against 22.05 dB now, f32 22.05); q4 is left 0.01 dB lower (docs/benchmarks.md).
FIT_PERCENTILES = (0.1, 99.9)


class LatentError(ValueError):
    """A latent or latent/info message (or value) that cannot be built or read; one sentence."""


def model_id(checkpoint_sha256: str) -> str:
    """The model id of SPEC §4.3: the first 12 hex digits of the encoder checkpoint's SHA-256."""
    digest = str(checkpoint_sha256 or "").lower()
    if not re.fullmatch(r"[0-9a-f]{12,}", digest):
        raise LatentError(f"checkpoint hash {checkpoint_sha256!r} is not a SHA-256 in hex; the model id needs one "
                          "(export the model with rgbd-vae export)")
    return digest[:12]


@dataclass(frozen=True)
class LatentFormat:
    dim: int
    codec: str
    depth: str
    model: str

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or not 0 < self.dim <= MAX_DIM:
            raise LatentError(f"latent dim {self.dim!r} is not a whole number in 1..{MAX_DIM}")
        if self.codec not in CODECS:
            raise LatentError(f"latent codec {self.codec!r} is not one of {', '.join(CODECS)}")
        if self.depth not in DEPTH_SOURCES:
            raise LatentError(f"latent depth {self.depth!r} is not one of {', '.join(DEPTH_SOURCES)}")
        if not isinstance(self.model, str) or not _MODEL_ID.fullmatch(self.model):
            raise LatentError(f"latent model {self.model!r} is not 12 lower-case hex digits (the start of the "
                              "encoder checkpoint's SHA-256)")

    def __str__(self) -> str:
        return (f"{PREFIX}; v={VERSION}; dim={self.dim}; codec={self.codec}; depth={self.depth}; "
                f"model={self.model}")

    @property
    def mu_bytes(self) -> int:
        """Bytes of μ in ``data``."""
        if self.codec in _FLOAT:
            return self.dim * _FLOAT[self.codec].itemsize
        return self.dim if self.codec == "q8" else (self.dim + 1) // 2


def _fields(text: str, prefix: str, keys: tuple[str, ...], what: str) -> dict[str, str]:
    if not isinstance(text, str):
        raise LatentError(f"{what} format is a {type(text).__name__}; expected text")
    parts = text.split("; ")
    expected = f"'{prefix}; v={VERSION}; " + "; ".join(f"{k}=..." for k in keys) + "'"
    if parts[0] != prefix:
        raise LatentError(f"{what} format {text[:80]!r} does not start with {prefix!r}; expected {expected}")
    pairs = [p.partition("=") for p in parts[1:]]
    names = tuple(name for name, _, _ in pairs)
    if names != ("v", *keys) or any(not sep or not value for _, sep, value in pairs):
        raise LatentError(f"{what} format {text[:120]!r} is not {expected} (keys in this order, separated by '; ')")
    values = {name: value for name, _, value in pairs}
    if values["v"] != VERSION:
        raise LatentError(f"{what} format version v={values['v'][:20]} is not the v={VERSION} this build reads")
    if "dim" in values and not re.fullmatch(r"[1-9][0-9]{0,5}", values["dim"]):
        raise LatentError(f"{what} format has dim={values['dim'][:20]}; expected a whole number > 0")
    return values


def parse_format(text: str) -> LatentFormat:
    """The :class:`LatentFormat` of a latent message's ``format``; LatentError on anything malformed."""
    values = _fields(text, PREFIX, ("dim", "codec", "depth", "model"), "latent")
    return LatentFormat(int(values["dim"]), values["codec"], values["depth"], values["model"])


@dataclass(frozen=True, eq=False)
class Quantiser:
    """Per-dimension range [lo, hi] of the uniform codes (float32 (D,), finite, hi > lo)."""

    lo: np.ndarray
    hi: np.ndarray

    def __eq__(self, other) -> bool:
        return (isinstance(other, Quantiser) and np.array_equal(self.lo, other.lo)
                and np.array_equal(self.hi, other.hi))

    __hash__ = None

    def __post_init__(self) -> None:
        lo, hi = (np.asarray(v) for v in (self.lo, self.hi))
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise LatentError(f"quantiser lo {lo.shape} and hi {hi.shape} are not two equal non-empty vectors")
        lo, hi = lo.astype(np.float32), hi.astype(np.float32)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise LatentError("quantiser holds NaN or infinite bounds; expected finite lo and hi")
        if not (hi > lo).all():
            raise LatentError(f"quantiser has hi <= lo in {int(np.count_nonzero(hi <= lo))} dimension(s); "
                              "expected hi > lo everywhere")
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def dim(self) -> int:
        return int(self.lo.shape[0])

    @classmethod
    def fit(cls, mus: np.ndarray) -> Quantiser:
        """The range of each dimension of ``mus`` (N, D): its 0.1th to 99.9th percentile
        (:data:`FIT_PERCENTILES`), so a few outliers saturate instead of widening every step; a
        dimension that barely varies gets a range of at least 1e-3 around its value."""
        mus = np.asarray(mus, dtype=np.float64)
        if mus.ndim != 2 or mus.shape[0] < 1 or mus.shape[1] < 1:
            raise LatentError(f"quantiser fit needs μ of shape (N, D) with N, D >= 1; got {mus.shape}")
        if not np.isfinite(mus).all():
            raise LatentError("quantiser fit got NaN or infinite μ; expected an encoder's finite means")
        lo, hi = np.percentile(mus, FIT_PERCENTILES, axis=0)
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 5e-4)
        return cls((centre - half).astype(np.float32), (centre + half).astype(np.float32))

    def to_dict(self) -> dict[str, list[float]]:
        return {"lo": [float(v) for v in self.lo], "hi": [float(v) for v in self.hi]}

    @classmethod
    def from_dict(cls, values: Any) -> Quantiser:
        if not isinstance(values, dict) or not isinstance(values.get("lo"), list) or not isinstance(values.get("hi"), list):
            raise LatentError("quantiser table is not a mapping with lists 'lo' and 'hi'")
        try:
            return cls(np.array(values["lo"], dtype=np.float64), np.array(values["hi"], dtype=np.float64))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, LatentError):
                raise
            raise LatentError("quantiser table holds values that are not numbers") from None

    def codes(self, mu: np.ndarray, bits: int) -> np.ndarray:
        """Integer codes 0 .. 2**bits - 1 of ``mu`` (saturating outside [lo, hi])."""
        levels = 1 << bits
        scaled = (np.asarray(mu, np.float64) - self.lo) / (self.hi.astype(np.float64) - self.lo) * levels
        return np.clip(np.floor(scaled), 0, levels - 1).astype(np.uint8)

    def values(self, codes: np.ndarray, bits: int) -> np.ndarray:
        """The value of each code: lo + (c + 0.5)(hi - lo) / 2**bits, float32."""
        step = (self.hi.astype(np.float64) - self.lo) / (1 << bits)
        return (self.lo + (codes.astype(np.float64) + 0.5) * step).astype(np.float32)


def _check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise LatentError(f"latent codec {codec!r} is not one of {', '.join(CODECS)}")


def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "fiu":
        raise LatentError(f"{name} has shape {array.shape} and type {array.dtype}; expected a non-empty vector of "
                          "numbers")
    if not np.isfinite(array).all():
        raise LatentError(f"{name} holds NaN or infinite values; expected finite numbers")
    return array


def _need_quantiser(codec: str, dim: int, quantiser: Quantiser | None) -> Quantiser:
    if quantiser is None:
        raise LatentError(f"codec {codec} needs the model's quantiser table (latent/info or its metadata) and none "
                          "is at hand")
    if quantiser.dim != dim:
        raise LatentError(f"the quantiser table has {quantiser.dim} dimensions and the latent {dim}; they belong "
                          "to different models")
    return quantiser


def encode(mu, codec: str, quantiser: Quantiser | None = None) -> bytes:
    """The ``data`` bytes of μ under ``codec`` (q8 / q4 need ``quantiser``)."""
    _check_codec(codec)
    mu = _vector(mu, "latent μ")
    if codec in _FLOAT:
        if codec == "f16" and np.abs(mu).max() > 65504:
            raise LatentError(f"latent μ holds {float(np.abs(mu).max()):.3g}, beyond float16's range; use f32")
        return mu.astype(_FLOAT[codec]).tobytes()
    quantiser = _need_quantiser(codec, mu.shape[0], quantiser)
    codes = quantiser.codes(mu, _BITS[codec])
    if codec == "q8":
        return codes.tobytes()
    if codes.size % 2:
        codes = np.append(codes, np.uint8(0))
    return (codes[0::2] | (codes[1::2] << 4)).astype(np.uint8).tobytes()


def _bytes(data, what: str = "latent") -> bytes:
    if isinstance(data, str) or not hasattr(data, "__len__"):
        raise LatentError(f"{what} data is a {type(data).__name__}, not a byte sequence")
    try:
        return bytes(data)
    except (TypeError, ValueError):
        raise LatentError(f"{what} data is a {type(data).__name__}, not a byte sequence") from None


def decode(data: bytes, fmt: LatentFormat, quantiser: Quantiser | None = None) -> np.ndarray:
    """μ (float32, (dim,)) from the first ``fmt.mu_bytes`` of ``data``; its length must be exact."""
    data = _bytes(data)
    if len(data) != fmt.mu_bytes:
        raise LatentError(f"latent data holds {len(data)} bytes; dim={fmt.dim} codec={fmt.codec} takes "
                          f"{fmt.mu_bytes}")
    if fmt.codec in _FLOAT:
        mu = np.frombuffer(data, dtype=_FLOAT[fmt.codec]).astype(np.float32)
        if not np.isfinite(mu).all():
            raise LatentError("latent μ holds NaN or infinite values")
        return mu
    quantiser = _need_quantiser(fmt.codec, fmt.dim, quantiser)
    raw = np.frombuffer(data, dtype=np.uint8)
    if fmt.codec == "q4":
        raw = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(-1)[:fmt.dim]
    return quantiser.values(raw, _BITS[fmt.codec])


def build_latent_message(header, mu, *, codec: str, depth: str, model: str, quantiser: Quantiser | None = None,
                         logvar=None):
    """The ``latent`` CompressedImage of μ (and log σ², f32 / f16 only) with ``header``."""
    from sensor_msgs.msg import CompressedImage

    mu = _vector(mu, "latent μ")
    fmt = LatentFormat(int(mu.shape[0]), codec, depth, model)
    data = encode(mu, codec, quantiser)
    if logvar is not None:
        if codec not in _FLOAT:
            raise LatentError(f"log σ² travels only with codec f32 or f16, not {codec}")
        logvar = _vector(logvar, "latent log σ²")
        if logvar.shape != mu.shape:
            raise LatentError(f"log σ² has {logvar.shape[0]} values and μ {mu.shape[0]}; expected one per dimension")
        data += encode(logvar, codec)
    msg = CompressedImage(format=str(fmt), data=data)
    if header is not None:
        msg.header = header
    return msg


def parse_latent_message(msg, quantiser: Quantiser | None = None) -> tuple[LatentFormat, np.ndarray, np.ndarray | None]:
    """(format, μ, log σ² or None) of a ``latent`` message; LatentError when it is not one."""
    fmt = parse_format(msg.format)
    data = _bytes(msg.data)
    if len(data) == 2 * fmt.mu_bytes and fmt.codec in _FLOAT:
        return fmt, decode(data[:fmt.mu_bytes], fmt, quantiser), _logvar(data[fmt.mu_bytes:], fmt)
    if len(data) != fmt.mu_bytes:
        also = f" or {2 * fmt.mu_bytes} (with log σ²)" if fmt.codec in _FLOAT else ""
        raise LatentError(f"latent data holds {len(data)} bytes; dim={fmt.dim} codec={fmt.codec} takes "
                          f"{fmt.mu_bytes}{also}")
    return fmt, decode(data, fmt, quantiser), None


def _logvar(data: bytes, fmt: LatentFormat) -> np.ndarray:
    logvar = np.frombuffer(data, dtype=_FLOAT[fmt.codec]).astype(np.float32)
    if not np.isfinite(logvar).all():
        raise LatentError("latent log σ² holds NaN or infinite values")
    return logvar


def info_format(dim: int, model: str) -> str:
    LatentFormat(dim, "f32", "none", model)  # the same checks of dim and model id
    return f"{INFO_PREFIX}; v={VERSION}; dim={dim}; model={model}"


def build_info_message(header, quantiser: Quantiser, model: str):
    """The ``latent/info`` CompressedImage: format and the float32 ``lo`` then ``hi`` of ``quantiser``."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format=info_format(quantiser.dim, model),
                          data=quantiser.lo.astype("<f4").tobytes() + quantiser.hi.astype("<f4").tobytes())
    if header is not None:
        msg.header = header
    return msg


def parse_info_message(msg) -> tuple[str, Quantiser]:
    """(model id, quantiser) of a ``latent/info`` message; LatentError when it is not one."""
    values = _fields(msg.format, INFO_PREFIX, ("dim", "model"), "latent/info")
    dim, model = int(values["dim"]), values["model"]
    info_format(dim, model)
    data = _bytes(msg.data, "latent/info")
    if len(data) != 8 * dim:
        raise LatentError(f"latent/info data holds {len(data)} bytes; dim={dim} takes {8 * dim} (float32 lo then hi)")
    table = np.frombuffer(data, dtype="<f4")
    return model, Quantiser(table[:dim].copy(), table[dim:].copy())
