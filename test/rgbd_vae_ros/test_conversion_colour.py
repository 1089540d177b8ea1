"""Camera encodings to RGB (16-bit, YUV 4:2:2, Bayer) and CompressedImage (jpeg/png), against
references computed here from the formulas, plus refusals and fuzzing (issue 13, item 13)."""

from __future__ import annotations

import io
import struct
import sys
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgbd_vae_ros import conversion
from rgbd_vae_ros.conversion import (
    RGB_ENCODINGS,
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    rgb_to_compressed_msg,
)


def raw_msg(body: np.ndarray, encoding: str, width: int, *, pad: int = 0, bigendian: bool = False):
    """A message built by hand: ``body`` is (H, row elements) in the encoding's element type."""
    height = body.shape[0]
    rows = body.astype(body.dtype.newbyteorder(">" if bigendian else "<")).view(np.uint8).reshape(height, -1)
    padded = np.full((height, rows.shape[1] + pad), 0xCD, np.uint8)
    padded[:, : rows.shape[1]] = rows
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                           step=padded.shape[1], data=padded.tobytes(), header=None)


RNG = np.random.default_rng(13)


# --- 16-bit colour and grey: the high byte ------------------------------------------------------

@pytest.mark.parametrize("encoding,order", [("rgb16", [0, 1, 2]), ("bgr16", [2, 1, 0]),
                                            ("rgba16", [0, 1, 2]), ("bgra16", [2, 1, 0])])
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_16_bit_colour_keeps_the_high_byte(encoding, order, bigendian, pad):
    channels = 4 if "a16" in encoding else 3
    pixels = RNG.integers(0, 65536, (5, 7, channels), dtype=np.uint16)
    rgb = image_msg_to_rgb(raw_msg(pixels.reshape(5, -1), encoding, 7, pad=pad, bigendian=bigendian))
    expected = (pixels[..., order] // 256).astype(np.uint8)
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_becomes_grey_rgb_of_the_high_byte(bigendian):
    grey = np.array([[0, 255, 256, 511], [32768, 40000, 65280, 65535]], np.uint16)
    rgb = image_msg_to_rgb(raw_msg(grey, "mono16", 4, pad=2, bigendian=bigendian))
    expected = np.array([[0, 0, 1, 1], [128, 156, 255, 255]], np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], expected)


# --- YUV 4:2:2 (BT.601 limited range, as OpenCV's COLOR_YUV2RGB_UYVY / _YUY2) ------------------

def bt601_reference(y, u, v):
    """The textbook BT.601 limited-range formula in floating point, rounded and clipped."""
    y, u, v = (np.maximum(np.asarray(y, float) - 16, 0), np.asarray(u, float) - 128, np.asarray(v, float) - 128)
    rgb = np.stack([1.164383 * y + 1.596027 * v,
                    1.164383 * y - 0.391762 * u - 0.812968 * v,
                    1.164383 * y + 2.017232 * u], axis=-1)
    return np.clip(np.floor(rgb + 0.5), 0, 255)


def yuv_msg(y, u, v, encoding, *, pad=0):
    """(H, W) luma and (H, W/2) chroma packed in the encoding's byte order."""
    height, width = y.shape
    quads = np.empty((height, width // 2, 4), np.uint8)
    if encoding in ("yuv422", "uyvy"):
        quads[..., 0], quads[..., 1], quads[..., 2], quads[..., 3] = u, y[:, 0::2], v, y[:, 1::2]
    else:
        quads[..., 0], quads[..., 1], quads[..., 2], quads[..., 3] = y[:, 0::2], u, y[:, 1::2], v
    return raw_msg(quads.reshape(height, -1), encoding, width, pad=pad)


YUV_ENCODINGS = ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"]


@pytest.mark.parametrize("encoding", YUV_ENCODINGS)
def test_yuv422_known_colours(encoding):
    # black, white, mid grey, and the BT.601 limited-range codes of pure red and pure blue
    y = np.array([[16, 235, 126, 126, 82, 82, 41, 41]], np.uint8)
    u = np.array([[128, 128, 90, 240]], np.uint8)
    v = np.array([[128, 128, 240, 110]], np.uint8)
    rgb = image_msg_to_rgb(yuv_msg(y, u, v, encoding))
    np.testing.assert_array_equal(rgb[0, :4], [[0, 0, 0], [255, 255, 255], [128, 128, 128], [128, 128, 128]])
    np.testing.assert_allclose(rgb[0, 4], [255, 0, 0], atol=2)
    np.testing.assert_allclose(rgb[0, 6], [0, 0, 255], atol=2)


@pytest.mark.parametrize("encoding", YUV_ENCODINGS)
@pytest.mark.parametrize("pad", [0, 3])
def test_yuv422_matches_the_bt601_formula_on_random_pixels(encoding, pad):
    y = RNG.integers(0, 256, (6, 10), dtype=np.uint8)
    u, v = RNG.integers(0, 256, (2, 6, 5), dtype=np.uint8)
    rgb = image_msg_to_rgb(yuv_msg(y, u, v, encoding, pad=pad))
    expected = bt601_reference(y, np.repeat(u, 2, axis=1), np.repeat(v, 2, axis=1))
    assert rgb.shape == (6, 10, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - expected).max() <= 1  # fixed point vs float rounding


def test_uyvy_and_yuyv_of_the_same_pixels_agree():
    y = RNG.integers(16, 236, (4, 8), dtype=np.uint8)
    u, v = RNG.integers(16, 241, (2, 4, 4), dtype=np.uint8)
    results = [image_msg_to_rgb(yuv_msg(y, u, v, encoding)) for encoding in YUV_ENCODINGS]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("encoding", YUV_ENCODINGS)
def test_yuv422_of_odd_width_is_refused(encoding):
    msg = raw_msg(np.zeros((2, 6), np.uint8), encoding, 3)
    with pytest.raises(ImageConversionError, match="3 pixels wide; .*the width must be even"):
        image_msg_to_rgb(msg)


# --- Bayer: bilinear demosaic ---------------------------------------------------------------------

BAYER = ["rggb", "bggr", "gbrg", "grbg"]


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """What a Bayer sensor records of the true picture ``rgb``: one colour per site."""
    height, width = rgb.shape[:2]
    raw = np.empty((height, width), np.uint8)
    for row in range(height):
        for col in range(width):
            raw[row, col] = rgb[row, col, "rgb".index(pattern[2 * (row % 2) + col % 2])]
    return raw


@pytest.mark.parametrize("pattern", BAYER)
@pytest.mark.parametrize("height,width", [(2, 2), (5, 7), (6, 8)])
def test_bayer_of_a_constant_colour_is_that_colour_everywhere(pattern, height, width):
    truth = np.broadcast_to(np.array([200, 90, 30], np.uint8), (height, width, 3))
    rgb = image_msg_to_rgb(raw_msg(mosaic(truth, pattern), f"bayer_{pattern}8", width))
    np.testing.assert_array_equal(rgb, truth)


@pytest.mark.parametrize("pattern", BAYER)
def test_bayer_of_a_linear_gradient_is_exact_inside_and_keeps_every_sample(pattern):
    rows, cols = np.mgrid[0:9, 0:12]
    truth = np.stack([10 + 2 * cols + 4 * rows, 240 - 6 * cols - 2 * rows, 20 + 8 * rows], axis=-1).astype(np.uint8)
    raw = mosaic(truth, pattern)
    rgb = image_msg_to_rgb(raw_msg(raw, f"bayer_{pattern}8", 12, pad=5))
    np.testing.assert_array_equal(rgb[1:-1, 1:-1], truth[1:-1, 1:-1])  # bilinear is exact on a plane
    np.testing.assert_array_equal(mosaic(rgb, pattern), raw)  # each site keeps the colour it measured
    assert np.abs(rgb.astype(int) - truth).max() <= 8  # borders mirror: off by at most one step


@pytest.mark.parametrize("height,width", [(1, 4), (4, 1), (1, 1)])
def test_bayer_smaller_than_one_cell_is_refused(height, width):
    msg = raw_msg(np.zeros((height, width), np.uint8), "bayer_grbg8", width)
    with pytest.raises(ImageConversionError, match=f"bayer_grbg8 image is {width}x{height}; .*at least 2x2"):
        image_msg_to_rgb(msg)


# --- refusals and fuzzing ------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["bayer_rggb16", "nv12", "32FC1", "16UC1", "8UC3", "RGB8", "", None])
def test_other_encodings_are_refused_naming_the_supported_ones(encoding):
    msg = raw_msg(np.zeros((2, 12), np.uint8), encoding, 2)
    with pytest.raises(ImageConversionError, match=r"expected one of rgb8, bgr8, .*yuv422_yuy2, .*bayer_rggb8"):
        image_msg_to_rgb(msg)


def test_every_listed_encoding_converts_a_small_image():
    for encoding in RGB_ENCODINGS:
        fmt = conversion.image_format(encoding)
        body = np.zeros((2, 4 * fmt.channels), fmt.dtype)
        assert image_msg_to_rgb(raw_msg(body, encoding, 4)).shape == (2, 4, 3), encoding


_SIDES = st.one_of(st.integers(-1, 9), st.sampled_from([0, 2**31 - 1, 16385]))


@settings(max_examples=400, deadline=None)
@given(encoding=st.sampled_from(list(RGB_ENCODINGS) + ["bayer_rggb16", "nv21", "16UC1"]), height=_SIDES,
       width=_SIDES, step=_SIDES, big=st.booleans(), data=st.binary(max_size=120))
@pytest.mark.slow
def test_random_bytes_in_any_encoding_convert_or_raise_the_module_error(encoding, height, width, step, big, data):
    msg = SimpleNamespace(encoding=encoding, height=height, width=width, step=step, is_bigendian=big, data=data)
    try:
        rgb = image_msg_to_rgb(msg)
    except ImageConversionError as exc:
        assert str(exc)
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


@settings(max_examples=100, deadline=None)
@given(encoding=st.sampled_from(RGB_ENCODINGS), height=st.integers(2, 5), half_width=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_random_pixels_of_a_consistent_message_always_convert(encoding, height, half_width, seed):
    fmt = conversion.image_format(encoding)
    width = 2 * half_width
    info = np.iinfo(fmt.dtype)
    body = np.random.default_rng(seed).integers(0, info.max, (height, width * fmt.channels), dtype=fmt.dtype,
                                                endpoint=True)
    rgb = image_msg_to_rgb(raw_msg(body, encoding, width))
    assert rgb.shape == (height, width, 3)


# --- CompressedImage -------------------------------------------------------------------------------

def compressed(data: bytes, fmt: str = "rgb8; jpeg compressed bgr8"):
    return SimpleNamespace(format=fmt, data=data, header=None)


def smooth_picture(height=48, width=64):
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols * 255 // (width - 1), rows * 255 // (height - 1), (rows + cols) % 256 // 2],
                    axis=-1).astype(np.uint8)


def test_png_round_trip_is_exact():
    rgb = RNG.integers(0, 256, (31, 17, 3), dtype=np.uint8)
    msg = rgb_to_compressed_msg(rgb, "png")
    assert msg.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), rgb)


def test_jpeg_round_trip_is_close():
    rgb = smooth_picture()
    msg = rgb_to_compressed_msg(rgb, "jpeg")
    assert msg.format == "rgb8; jpeg compressed bgr8" and bytes(msg.data[:2]) == b"\xff\xd8"
    back = compressed_msg_to_rgb(msg)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    error = np.abs(back.astype(int) - rgb)
    assert error.mean() < 3 and error.max() < 40


def test_header_is_kept_on_a_compressed_message():
    from std_msgs.msg import Header

    msg = rgb_to_compressed_msg(np.zeros((2, 2, 3), np.uint8), "png", Header(frame_id="cam"))
    assert msg.header.frame_id == "cam"


@pytest.mark.parametrize("fmt", ["jpeg", "png", "JPEG", "jpg", "bgr8; jpeg compressed bgr8",
                                 "mono8; png compressed mono8", "rgb8; png compressed bgr8"])
def test_format_strings_image_transport_writes_are_accepted(fmt):
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    kind = "png" if "png" in fmt.lower() else "jpeg"
    data = bytes(rgb_to_compressed_msg(rgb, kind).data)
    assert compressed_msg_to_rgb(compressed(data, fmt)).shape == (4, 6, 3)


@pytest.mark.parametrize("fmt", ["tiff", "", "bmp", "16UC1; compressedDepth png", "jpeg png", None, 7])
def test_other_compressed_formats_are_refused(fmt):
    data = bytes(rgb_to_compressed_msg(np.zeros((2, 2, 3), np.uint8), "png").data)
    with pytest.raises(ImageConversionError, match="is not a jpeg or png colour image; expected e.g. 'jpeg'"):
        compressed_msg_to_rgb(compressed(data, fmt))


def test_grey_and_16_bit_grey_png_become_grey_rgb():
    from PIL import Image

    for grey, expected in [(np.array([[0, 77, 255]], np.uint8), [0, 77, 255]),
                           (np.array([[0, 511, 65535]], np.uint16), [0, 1, 255])]:
        buffer = io.BytesIO()
        Image.fromarray(grey).save(buffer, format="PNG")
        rgb = compressed_msg_to_rgb(compressed(buffer.getvalue(), "png"))
        for channel in range(3):
            np.testing.assert_array_equal(rgb[0, :, channel], expected)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` RGB whose pixel data is 8 bytes of garbage."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"\x00" * 8)


@pytest.mark.parametrize("width,height,match", [
    (20000, 10, "image is 20000x10; expected each side at most 16384"),
    (16000, 16000, "too large to decode|exceed"),
])
def test_oversized_compressed_image_is_refused_from_its_header(width, height, match):
    # No pixel data follows the header, so reaching the decoder would report damage instead.
    with pytest.raises(ImageConversionError, match=match):
        compressed_msg_to_rgb(compressed(png_header_only(width, height), "png"))


def test_compressed_image_over_the_byte_limit_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(conversion, "MAX_IMAGE_BYTES", 100 * 100 * 3 - 1)
    with pytest.raises(ImageConversionError, match="100x100; decoded it would exceed the 29999 bytes"):
        compressed_msg_to_rgb(compressed(png_header_only(100, 100), "png"))


def test_header_without_pixels_is_reported_damaged():
    with pytest.raises(ImageConversionError, match=r"PNG image \(8x8\) is damaged"):
        compressed_msg_to_rgb(compressed(png_header_only(8, 8), "png"))


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff", b"not an image at all", b"\x89PNG\r\n\x1a\n"])
def test_corrupt_compressed_data_is_refused(data):
    with pytest.raises(ImageConversionError, match="not a readable JPEG or PNG file|is damaged"):
        compressed_msg_to_rgb(compressed(data))


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_truncated_compressed_data_is_refused(kind):
    data = bytes(rgb_to_compressed_msg(smooth_picture(), kind).data)
    with pytest.raises(ImageConversionError, match="is damaged|not a readable"):
        compressed_msg_to_rgb(compressed(data[: len(data) // 2], kind))


def test_missing_pillow_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImageConversionError, match="need Pillow, which is not installed"):
        compressed_msg_to_rgb(compressed(b"\xff\xd8", "jpeg"))


def test_unsupported_target_format_is_refused():
    with pytest.raises(ImageConversionError, match="compressed format 'gif' is not supported"):
        rgb_to_compressed_msg(np.zeros((2, 2, 3), np.uint8), "gif")
    with pytest.raises(ImageConversionError, match="does not fit encoding 'rgb8'"):
        rgb_to_compressed_msg(np.zeros((2, 2), np.uint8), "png")


_VALID_FILES = {kind: bytes(rgb_to_compressed_msg(smooth_picture(16, 16), kind).data) for kind in ("jpeg", "png")}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["jpeg", "png"]), cut=st.integers(0, 2000),
       flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6))
@pytest.mark.slow
def test_damaged_compressed_files_decode_or_raise_the_module_error(kind, cut, flips):
    data = bytearray(_VALID_FILES[kind][: max(cut, 1) if cut < len(_VALID_FILES[kind]) else None])
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    try:
        rgb = compressed_msg_to_rgb(compressed(bytes(data), kind))
    except ImageConversionError as exc:
        assert str(exc)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(fmt=st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "x"]), data=st.binary(max_size=300))
def test_random_bytes_as_compressed_data_raise_the_module_error(fmt, data):
    with pytest.raises(ImageConversionError):
        compressed_msg_to_rgb(compressed(data, fmt))


# --- OpenCV, where it is importable (cv_bridge converts with it) -----------------------------------

@pytest.mark.parametrize("encoding,code", [("uyvy", "COLOR_YUV2RGB_UYVY"), ("yuv422_yuy2", "COLOR_YUV2RGB_YUY2")])
def test_yuv422_agrees_with_opencv_bit_for_bit(encoding, code):
    cv2 = pytest.importorskip("cv2")
    raw = RNG.integers(0, 256, (16, 32), dtype=np.uint8)
    ours = image_msg_to_rgb(raw_msg(raw, encoding, 16))
    np.testing.assert_array_equal(ours, cv2.cvtColor(raw.reshape(16, 16, 2), getattr(cv2, code)))


# cv_bridge's table: OpenCV names a pattern by its second row and column.
@pytest.mark.parametrize("pattern,code", [("rggb", "BG"), ("bggr", "RG"), ("gbrg", "GR"), ("grbg", "GB")])
def test_bayer_agrees_with_opencv_bilinear_away_from_the_border(pattern, code):
    cv2 = pytest.importorskip("cv2")
    raw = RNG.integers(0, 256, (12, 14), dtype=np.uint8)
    ours = image_msg_to_rgb(raw_msg(raw, f"bayer_{pattern}8", 14))
    theirs = cv2.cvtColor(raw, getattr(cv2, f"COLOR_Bayer{code}2RGB"))
    np.testing.assert_array_equal(ours[1:-1, 1:-1], theirs[1:-1, 1:-1])
