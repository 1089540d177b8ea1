"""sensor_msgs/Image and CompressedImage <-> numpy, depth unit helpers and CameraInfo rescaling.

All image-message conversion lives here, behind one exception type. Reading works on any
object with the fields of ``sensor_msgs/msg/Image`` (rclpy messages, rosbags dataclasses),
so the module imports no ROS package until a message is built, and Pillow only when a
compressed image is read or written.
"""

from __future__ import annotations

import array
import copy
import io
import re
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_SIDE",
    "ImageConversionError",
    "ImageFormat",
    "RGB_ENCODINGS",
    "compressed_msg_to_rgb",
    "depth_m_to_mm",
    "depth_mm_to_m",
    "depth_msg_to_m",
    "image_format",
    "image_to_numpy",
    "image_msg_to_rgb",
    "numpy_to_image",
    "rgb_to_compressed_msg",
    "scale_camera_info",
]

# Larger than any camera we expect, small enough that a corrupt header cannot ask for gigabytes.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_BYTES = 1 << 30


class ImageConversionError(ValueError):
    """A message or array cannot be converted; the message says what was wrong and expected."""


@dataclass(frozen=True)
class ImageFormat:
    """How one encoding lays out a pixel: element type (little-endian) and channel count."""

    dtype: np.dtype
    channels: int

    @property
    def pixel_bytes(self) -> int:
        return self.dtype.itemsize * self.channels


_U8, _U16 = np.dtype("<u1"), np.dtype("<u2")
_NAMED_FORMATS = {
    "rgb8": ImageFormat(_U8, 3),
    "bgr8": ImageFormat(_U8, 3),
    "rgba8": ImageFormat(_U8, 4),
    "bgra8": ImageFormat(_U8, 4),
    "mono8": ImageFormat(_U8, 1),
    "mono16": ImageFormat(_U16, 1),
    "rgb16": ImageFormat(_U16, 3),
    "bgr16": ImageFormat(_U16, 3),
    "rgba16": ImageFormat(_U16, 4),
    "bgra16": ImageFormat(_U16, 4),
    # YUV 4:2:2, two bytes a pixel as cv_bridge reads them (8UC2); the newer names are aliases.
    "yuv422": ImageFormat(_U8, 2),
    "uyvy": ImageFormat(_U8, 2),
    "yuv422_yuy2": ImageFormat(_U8, 2),
    "yuyv": ImageFormat(_U8, 2),
    **{f"bayer_{pattern}8": ImageFormat(_U8, 1) for pattern in ("rggb", "bggr", "gbrg", "grbg")},
}
# OpenCV-style encodings as sensor_msgs/image_encodings.hpp spells them: 8UC3, 32FC1, ...
_CV_TYPE = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")
_CV_DTYPES = {"8U": "<u1", "8S": "<i1", "16U": "<u2", "16S": "<i2", "32S": "<i4", "32F": "<f4", "64F": "<f8"}


def image_format(encoding: str) -> ImageFormat:
    """The pixel layout of ``encoding``, or ImageConversionError naming the known encodings."""
    if not isinstance(encoding, str):
        raise ImageConversionError(f"image encoding {encoding!r} is not a string; expected e.g. 'rgb8'")
    fmt = _NAMED_FORMATS.get(encoding)
    if fmt is not None:
        return fmt
    match = _CV_TYPE.match(encoding)
    if match is None:
        known = ", ".join(sorted(_NAMED_FORMATS))
        raise ImageConversionError(
            f"unknown image encoding {encoding!r}; expected one of {known} "
            "or an OpenCV type such as 8UC3, 16UC1, 32FC1, 64FC1"
        )
    return ImageFormat(np.dtype(_CV_DTYPES[match.group(1)]), int(match.group(2)))


def _check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image is {width}x{height}; expected a width and height of at least 1")
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise ImageConversionError(
            f"image is {width}x{height}; expected each side at most {MAX_IMAGE_SIDE} pixels"
        )


def _int_field(msg: Any, name: str) -> int:
    value = getattr(msg, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ImageConversionError(f"image {name} is {value!r}; expected a whole number")
    return int(value)


def _data_buffer(data: Any) -> np.ndarray:
    """The message's bytes as a flat uint8 array, sharing memory where the container allows."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        try:
            return np.asarray(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise ImageConversionError(
                f"image data of type {type(data).__name__!r} is not a byte sequence"
            ) from None


def image_to_numpy(msg: Any, *, copy: bool = False) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image`` as an (H, W) or (H, W, C) array in native byte order.

    Without ``copy`` the result shares memory with the message wherever the layout allows
    (padded rows become strides; only big-endian multi-byte data needs a copy).
    """
    fmt = image_format(msg.encoding)
    height, width, step = _int_field(msg, "height"), _int_field(msg, "width"), _int_field(msg, "step")
    _check_size(height, width)
    row_bytes = width * fmt.pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width {width} x {fmt.pixel_bytes} bytes per {msg.encoding} pixel "
            f"= {row_bytes}"
        )
    if step * height > MAX_IMAGE_BYTES:
        raise ImageConversionError(
            f"image of {step} x {height} bytes is larger than the {MAX_IMAGE_BYTES} bytes accepted"
        )
    flat = _data_buffer(msg.data)
    if flat.size != step * height:
        raise ImageConversionError(
            f"data holds {flat.size} bytes; expected step x height = {step} x {height} = {step * height}"
        )
    rows = flat.reshape(height, step)[:, :row_bytes]
    dtype = fmt.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(dtype).reshape(height, width, fmt.channels)
    if not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder("="))
    elif copy:
        pixels = pixels.copy()
    return pixels[:, :, 0] if fmt.channels == 1 else pixels


def _image_fields(pixels: np.ndarray, encoding: str) -> dict[str, Any]:
    fmt = image_format(encoding)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3:
        raise ImageConversionError(
            f"array of shape {pixels.shape} is not an image; expected (H, W) or (H, W, C)"
        )
    height, width, channels = pixels.shape
    if channels != fmt.channels or pixels.dtype.kind != fmt.dtype.kind or pixels.dtype.itemsize != fmt.dtype.itemsize:
        raise ImageConversionError(
            f"array of dtype {pixels.dtype} with {channels} channel(s) does not fit encoding {encoding!r}; "
            f"expected dtype {fmt.dtype.newbyteorder('=')} with {fmt.channels} channel(s)"
        )
    _check_size(height, width)
    native = fmt.dtype.newbyteorder("=")
    pixels = np.ascontiguousarray(pixels, dtype=native)
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(sys.byteorder == "big" and fmt.dtype.itemsize > 1),
        "step": width * fmt.pixel_bytes,
        "pixels": pixels,
    }


def numpy_to_image(pixels: np.ndarray, encoding: str, header: Any = None) -> Any:
    """A ``sensor_msgs/msg/Image`` holding ``pixels`` (H, W) or (H, W, C), with ``header`` if given."""
    from sensor_msgs.msg import Image  # ROS is needed only to build a message

    fields = _image_fields(pixels, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = fields["height"], fields["width"], encoding
    msg.is_bigendian, msg.step = fields["is_bigendian"], fields["step"]
    data = array.array("B")
    data.frombytes(fields["pixels"].reshape(-1).view(np.uint8).data)  # one copy; the generated setter keeps an array('B') as is
    msg.data = data
    return msg


def depth_mm_to_m(depth_mm: np.ndarray) -> np.ndarray:
    """16-bit millimetres (0 = no reading) to float32 metres (NaN = no reading), REP 118."""
    depth_mm = np.asarray(depth_mm)
    if depth_mm.dtype != np.uint16:
        raise ImageConversionError(f"millimetre depth has dtype {depth_mm.dtype}; expected uint16")
    depth_m = depth_mm.astype(np.float32) * np.float32(1e-3)
    depth_m[depth_mm == 0] = np.nan
    return depth_m


def depth_m_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Float metres to 16-bit millimetres; NaN, inf, <= 0 and beyond 65.535 m become 0 (no reading)."""
    depth_m = np.asarray(depth_m)
    if depth_m.dtype.kind != "f":
        raise ImageConversionError(f"metric depth has dtype {depth_m.dtype}; expected a float type")
    with np.errstate(invalid="ignore"):
        depth_mm = np.rint(depth_m * 1000.0)
        valid = np.isfinite(depth_mm) & (depth_mm > 0) & (depth_mm <= np.iinfo(np.uint16).max)
    return np.where(valid, depth_mm, 0).astype(np.uint16)


def depth_msg_to_m(msg: Any) -> np.ndarray:
    """A depth image (32FC1 / 64FC1 metres or 16UC1 / mono16 millimetres) as float32 metres, NaN = invalid."""
    if msg.encoding in ("16UC1", "mono16"):
        return depth_mm_to_m(image_to_numpy(msg))
    if msg.encoding in ("32FC1", "64FC1"):
        return image_to_numpy(msg).astype(np.float32, copy=False)
    raise ImageConversionError(
        f"depth image has encoding {msg.encoding!r}; expected 32FC1 (metres) or 16UC1 (millimetres)"
    )


# BT.601 limited range (Y 16-235, U/V 16-240) in OpenCV's 20-bit fixed point, as cv_bridge's
# COLOR_YUV2RGB_UYVY / _YUY2 compute it, so our pixels match a ROS C++ node's bit for bit. Red
# depends on (Y, V) and blue on (Y, U) only: two 64 KiB tables; green adds a (U, V) table to Y.
_YUV_SHIFT = 20
_YUV_CY, _YUV_CVR, _YUV_CVG, _YUV_CUG, _YUV_CUB = 1220542, 1673527, -852492, -409993, 2116026
_LUMA = (np.maximum(np.arange(256) - 16, 0) * _YUV_CY).astype(np.int32)
_CHROMA = np.arange(256) - 128
_HALF = 1 << (_YUV_SHIFT - 1)
_RED_OF_Y_V = np.clip((_LUMA[:, None] + _HALF + _YUV_CVR * _CHROMA) >> _YUV_SHIFT, 0, 255).astype(np.uint8).ravel()
_BLUE_OF_Y_U = np.clip((_LUMA[:, None] + _HALF + _YUV_CUB * _CHROMA) >> _YUV_SHIFT, 0, 255).astype(np.uint8).ravel()
_GREEN_OF_U_V = (_HALF + _YUV_CUG * _CHROMA[:, None] + _YUV_CVG * _CHROMA).astype(np.int32).ravel()


def _yuv422_to_rgb(pixels: np.ndarray, encoding: str) -> np.ndarray:
    height, width = pixels.shape[:2]
    if width % 2:
        raise ImageConversionError(
            f"{encoding} image is {width} pixels wide; YUV 4:2:2 shares U and V between pixel pairs, "
            "so the width must be even"
        )
    quads = pixels.reshape(height, width // 2, 4)  # (H, W/2, 4) bytes of a pixel pair
    if encoding in ("yuv422", "uyvy"):  # U Y0 V Y1
        u, y, v = quads[..., 0], quads[..., 1::2], quads[..., 2]
    else:  # Y0 U Y1 V (YUY2)
        u, y, v = quads[..., 1], quads[..., 0::2], quads[..., 3]
    y_high = y.astype(np.uint16) << 8  # (H, W/2, 2): table index Y * 256 + chroma
    rgb = np.empty((height, width // 2, 2, 3), np.uint8)
    rgb[..., 0] = _RED_OF_Y_V.take(y_high | v[..., None])
    rgb[..., 2] = _BLUE_OF_Y_U.take(y_high | u[..., None])
    green = (_LUMA.take(y) + _GREEN_OF_U_V.take((u.astype(np.uint16) << 8) | v)[..., None]) >> _YUV_SHIFT
    rgb[..., 1] = np.clip(green, 0, 255)
    return rgb.reshape(height, width, 3)


def _bayer_to_rgb(raw: np.ndarray, encoding: str) -> np.ndarray:
    """Bilinear demosaic: each missing colour is the rounded mean of its nearest samples of that colour
    (2 beside or 4 around), with the borders mirrored so the pattern continues."""
    pattern = encoding[len("bayer_"):-1]  # colours at (0,0), (0,1), (1,0), (1,1)
    height, width = raw.shape
    if height < 2 or width < 2:
        raise ImageConversionError(
            f"{encoding} image is {width}x{height}; a Bayer image needs at least 2x2 pixels to hold every colour"
        )
    padded = np.pad(raw, 1, mode="reflect").astype(np.uint16)  # reflect keeps each site's colour
    centre = padded[1:-1, 1:-1]
    beside = padded[1:-1, :-2] + padded[1:-1, 2:]
    above_below = padded[:-2, 1:-1] + padded[2:, 1:-1]
    diagonal = padded[:-2, :-2] + padded[:-2, 2:] + padded[2:, :-2] + padded[2:, 2:]
    means = {"centre": centre, "beside": (beside + 1) >> 1, "above_below": (above_below + 1) >> 1,
             "cross": (beside + above_below + 2) >> 2, "diagonal": (diagonal + 2) >> 2}
    rgb = np.empty((height, width, 3), np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            colour = pattern[2 * dy + dx]
            if colour == "g":  # red and blue lie beside it in its row or above and below it
                row_mate = "rgb".index(pattern[2 * dy + 1 - dx])
                sources = {1: "centre", row_mate: "beside", 2 - row_mate: "above_below"}
            else:
                own = "rgb".index(colour)
                sources = {own: "centre", 1: "cross", 2 - own: "diagonal"}
            for channel, source in sources.items():
                rgb[dy::2, dx::2, channel] = means[source][dy::2, dx::2]
    return rgb


def _grey(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels[..., None], 3, axis=-1)


def _high_byte(pixels: np.ndarray) -> np.ndarray:
    return (pixels >> 8).astype(np.uint8)


_TO_RGB = {
    "rgb8": lambda p, e: p, "bgr8": lambda p, e: p[..., ::-1], "rgba8": lambda p, e: p[..., :3],
    "bgra8": lambda p, e: p[..., 2::-1], "mono8": lambda p, e: _grey(p),
    "rgb16": lambda p, e: _high_byte(p), "bgr16": lambda p, e: _high_byte(p[..., ::-1]),
    "rgba16": lambda p, e: _high_byte(p[..., :3]), "bgra16": lambda p, e: _high_byte(p[..., 2::-1]),
    "mono16": lambda p, e: _grey(_high_byte(p)),
    "yuv422": _yuv422_to_rgb, "uyvy": _yuv422_to_rgb, "yuv422_yuy2": _yuv422_to_rgb, "yuyv": _yuv422_to_rgb,
    **{f"bayer_{pattern}8": _bayer_to_rgb for pattern in ("rggb", "bggr", "gbrg", "grbg")},
}
RGB_ENCODINGS = tuple(_TO_RGB)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """A colour image in any of ``RGB_ENCODINGS`` as (H, W, 3) uint8 RGB.

    16-bit encodings keep their high byte (>> 8); yuv422/uyvy and yuv422_yuy2/yuyv use BT.601
    limited range as OpenCV does; Bayer patterns are demosaiced bilinearly.
    """
    convert = _TO_RGB.get(msg.encoding) if isinstance(msg.encoding, str) else None
    if convert is None:
        raise ImageConversionError(
            f"image has encoding {msg.encoding!r}; expected one of {', '.join(RGB_ENCODINGS)}"
        )
    return np.ascontiguousarray(convert(image_to_numpy(msg), msg.encoding))


# --- sensor_msgs/CompressedImage (image_transport's "compressed" plugin) -------------------------

_COMPRESSED_KINDS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}


def _pillow_image() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImageConversionError(
            "compressed images need Pillow, which is not installed; install it with 'pip install pillow'"
        ) from None
    return Image


def _compressed_kind(fmt: Any) -> str:
    words = re.findall(r"[a-z0-9]+", fmt.lower()) if isinstance(fmt, str) else []
    kinds = {_COMPRESSED_KINDS[word] for word in words if word in _COMPRESSED_KINDS}
    if "compresseddepth" in words or len(kinds) != 1:
        raise ImageConversionError(
            f"compressed image format {fmt!r} is not a jpeg or png colour image; expected e.g. 'jpeg', 'png' "
            "or 'rgb8; jpeg compressed bgr8' (compressedDepth is not a colour transport)"
        )
    return kinds.pop()


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` holding a JPEG or PNG as (H, W, 3) uint8 RGB.

    The size in the file's header is checked against MAX_IMAGE_SIDE / MAX_IMAGE_BYTES before any
    pixel is decoded; 16-bit grey PNGs keep their high byte, as ``mono16`` does.
    """
    kind = _compressed_kind(msg.format)
    data = _data_buffer(msg.data)
    Image = _pillow_image()
    # Pillow raises many types for damaged files; each becomes our one error type at this boundary.
    damaged = (OSError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ValueError, struct.error)
    try:
        image = Image.open(io.BytesIO(data.tobytes()), formats=("JPEG", "PNG"))
    except Image.DecompressionBombError as exc:
        raise ImageConversionError(f"compressed {kind} image is too large to decode ({exc})") from None
    except damaged as exc:
        raise ImageConversionError(
            f"compressed {kind} image of {data.size} bytes is not a readable JPEG or PNG file ({exc})"
        ) from None
    with image:
        width, height = image.size
        _check_size(height, width)
        if width * height * 3 > MAX_IMAGE_BYTES:
            raise ImageConversionError(
                f"compressed image is {width}x{height}; decoded it would exceed the {MAX_IMAGE_BYTES} bytes accepted"
            )
        try:
            image.load()
            if image.mode.startswith("I"):  # 16- or 32-bit grey
                return _grey(_high_byte(np.clip(np.asarray(image), 0, 65535).astype(np.uint16)))
            return np.array(image.convert("RGB"), dtype=np.uint8)
        except damaged as exc:
            raise ImageConversionError(
                f"compressed {kind} image ({width}x{height}) is damaged and cannot be decoded ({exc})"
            ) from None


def rgb_to_compressed_msg(rgb_u8: np.ndarray, fmt: str = "jpeg", header: Any = None, *, quality: int = 90) -> Any:
    """A ``sensor_msgs/msg/CompressedImage`` of ``rgb_u8`` (H, W, 3) as jpeg or png, formatted as
    image_transport's compressed publisher writes it ('rgb8; jpeg compressed bgr8')."""
    from sensor_msgs.msg import CompressedImage  # ROS is needed only to build a message

    if fmt not in ("jpeg", "png"):
        raise ImageConversionError(f"compressed format {fmt!r} is not supported; expected 'jpeg' or 'png'")
    pixels = _image_fields(rgb_u8, "rgb8")["pixels"]
    buffer = io.BytesIO()
    _pillow_image().fromarray(pixels).save(buffer, format=_COMPRESSED_KINDS[fmt], quality=quality)
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = f"rgb8; {fmt} compressed bgr8"
    data = array.array("B")
    data.frombytes(buffer.getvalue())
    msg.data = data
    return msg


def scale_camera_info(info: Any, width: int, height: int) -> Any:
    """A copy of ``info`` describing the same camera at ``width`` x ``height`` pixels.

    Scales K, P and the ROI like image_proc's resize node, so downstream nodes that pair the
    info with a resized image agree with the standard ROS tools.
    """
    if info.width <= 0 or info.height <= 0:
        raise ImageConversionError(f"camera_info is {info.width}x{info.height}; expected a calibrated size")
    _check_size(height, width)
    scale_x, scale_y = width / info.width, height / info.height
    out = copy.deepcopy(info)
    out.width, out.height = width, height
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    k[0, :] *= scale_x
    k[1, :] *= scale_y
    out.k = k.reshape(-1)
    p = np.array(info.p, dtype=np.float64).reshape(3, 4)
    p[0, :] *= scale_x
    p[1, :] *= scale_y
    out.p = p.reshape(-1)
    roi = out.roi
    roi.x_offset, roi.width = round(roi.x_offset * scale_x), round(roi.width * scale_x)
    roi.y_offset, roi.height = round(roi.y_offset * scale_y), round(roi.height * scale_y)
    return out
