"""The standing battery of hostile input (SPEC §8, issue 13): hundreds of cases over the four
perception nodes and ``rgbd-vae bag process``.

Each case feeds one hostile input and asserts that it is refused the way a node counts a reject
(an error of ``BAD_INPUT`` with a sentence naming the problem), or counted by the processor, or
that its bad pixels come out invalid (NaN in 32FC1, 0 in 16UC1, never a clamped value); then it
feeds a good frame and asserts the outputs come back. The bulk runs through the processors (the
code the live nodes and ``bag process`` run), deterministically in one process; a smaller part
sends hostile messages to live nodes over rclpy.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import (MAX_IMAGE_SIDE, RGB_ENCODINGS, ImageConversionError, image_to_numpy,
                                     numpy_to_image, rgb_to_compressed_msg)
from rgbd_vae_ros.frames import Frame, FrameAssembler
from rgbd_vae_ros.latent import LatentError, Quantiser, encode, parse_latent_message
from rgbd_vae_ros.nodes import processors
from rgbd_vae_ros.nodes.base import BAD_INPUT, LOAD_ERRORS
from rgbd_vae_ros.nodes.parameters import defaults, problem
from rgbd_vae_ros.nodes.processors import Decoder, DepthEstimator, Encoder, Pipeline
from rgbd_vae_ros.stages import StageError

WIDTH, HEIGHT = 64, 48  # small, so hundreds of frames run in seconds
LATENT_DIM = 16  # conv_vae in the small settings (test/rgbd_vae_ros/conftest.py)
RNG = np.random.default_rng(13)
COMPRESSED_INPUT = hasattr(processors, "COMPRESSED_IMAGE")

EXPECTED = {
    "depth_estimator": {"depth/image", "depth/colorized"},
    "rgbd_encoder": {"latent"},
    "rgbd_decoder": {"decoded/image", "decoded/depth"},
    "rgbd_pipeline": {"depth/image", "depth/colorized", "latent", "decoded/image", "decoded/depth"},
}
IMAGE_TAKERS = ("depth_estimator", "rgbd_encoder", "rgbd_pipeline")
# What a valid camera_info adds to a node's outputs: the depth's camera and points; the decoded camera.
WITH_CAMERA_INFO = {"depth_estimator": {"depth/camera_info", "depth/points"},
                    "rgbd_pipeline": {"depth/camera_info", "depth/points", "decoded/camera_info"}}


def _header(i: int = 0) -> Header:
    h = Header(frame_id="camera_rgb")
    h.stamp.sec, h.stamp.nanosec = 3000 + i, 7000
    return h


def _rgb(i: int = 0, width: int = WIDTH, height: int = HEIGHT) -> Image:
    return numpy_to_image(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8), "rgb8", _header(i))


def _depth(i: int = 0, width: int = WIDTH, height: int = HEIGHT, value=None) -> Image:
    pixels = RNG.uniform(0.5, 5.0, (height, width)) if value is None else np.full((height, width), value)
    return numpy_to_image(pixels.astype(np.float32), "32FC1", _header(i))


MODEL: dict = {}  # the small conv_vae's model id and quantiser table (filled by _conv_vae_model)


@pytest.fixture(scope="module", autouse=True)
def _conv_vae_model(exported):
    from rgbd_vae_ros.inference import open_backend

    backend = open_backend(exported["conv_vae"][0], "decoder", "onnxruntime", "cpu")
    MODEL.update(id=backend.info.model_id, quantiser=Quantiser.from_dict(backend.info.latent_quantiser))
    backend.close()


def _latent_format(dim: int = LATENT_DIM, codec: str = "f32", model: str | None = None) -> str:
    return f"rgbd_vae_latent; v=1; dim={dim}; codec={codec}; depth=measured; model={model or MODEL['id']}"


def _latent(i: int = 0, mu=None, dim: int = LATENT_DIM, codec: str = "f32", model: str | None = None,
            logvar=None) -> CompressedImage:
    """A latent message as an encoder sends it, but any values (NaN too) pass: raw little-endian floats,
    or the codes of a q codec over the model's table."""
    mu = RNG.normal(0, 1, dim) if mu is None else mu
    if codec in ("q8", "q4"):
        data = encode(mu, codec, MODEL["quantiser"])
    else:
        dtype = "<f4" if codec == "f32" else "<f2"
        data = np.asarray(mu).astype(dtype).tobytes() + (b"" if logvar is None else np.asarray(logvar).astype(dtype).tobytes())
    return CompressedImage(header=_header(i), format=_latent_format(dim, codec, model), data=data)


def _mu_of(msg) -> np.ndarray:
    return parse_latent_message(msg, MODEL["quantiser"])[1]


def _info(width: int = WIDTH, height: int = HEIGHT, k=None, i: int = 0) -> CameraInfo:
    k = [50.0, 0.0, width / 2, 0.0, 50.0, height / 2, 0.0, 0.0, 1.0] if k is None else k
    return CameraInfo(header=_header(i), width=width, height=height, k=[float(v) for v in k])


def _fields(msg) -> types.SimpleNamespace:
    """A message's fields as a plain object, which (like a rosbags message) holds any value."""
    return types.SimpleNamespace(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                                 is_bigendian=msg.is_bigendian, step=msg.step, data=bytes(msg.data))


def _hostile(msg, **changes) -> types.SimpleNamespace:
    fake = _fields(msg)
    for name, value in changes.items():
        setattr(fake, name, value(fake) if callable(value) else value)
    return fake


# --- the processors, built once ------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(exported, pipeline_models):
    """name -> (processor, its parameter dict); parameters are read per frame, so a test may change them."""
    models = {"depth_estimator": (DepthEstimator, exported["unet_depth"][0]),
              "rgbd_encoder": (Encoder, exported["conv_vae"][0]),
              "rgbd_decoder": (Decoder, exported["conv_vae"][0]),
              "rgbd_pipeline": (Pipeline, pipeline_models)}
    made = {}
    for name, (cls, model) in models.items():
        params = {**defaults(), "model": str(model), "backend": "onnxruntime"}
        made[name] = (cls(params.__getitem__), params)
    yield made
    for processor, _ in made.values():
        processor.close()


@pytest.fixture
def procs(built):
    """The processors with default parameters and cleared counts; restored after the test."""
    saved = {name: dict(params) for name, (_, params) in built.items()}
    for processor, _ in built.values():
        processor.counts.clear()
        processor.reasons.clear()
    yield {name: processor for name, (processor, _) in built.items()}
    for name, (_, params) in built.items():
        params.clear()
        params.update(saved[name])


def _params(built, name) -> dict:
    return built[name][1]


def _good_frame(name: str, i: int = 100) -> Frame:
    if name == "rgbd_decoder":
        return Frame(_latent(i))
    return Frame(_rgb(i), depth=_depth(i) if name == "rgbd_encoder" else None)


def answers(processor, name: str, frame: Frame | None = None, expected: set[str] | None = None) -> dict:
    """Feed a good frame (or ``frame``); its outputs come back, finite where they must be, with its header."""
    frame = frame or _good_frame(name)
    out = processor(frame)
    topics = [topic for topic, _ in out]
    assert set(topics) == (expected or EXPECTED[name]) and len(topics) == len(set(topics)), topics
    outputs = dict(out)
    for topic, msg in outputs.items():
        assert msg.header.stamp == frame.image.header.stamp, topic
    if "latent" in outputs:
        fmt, mu, _ = parse_latent_message(outputs["latent"], MODEL["quantiser"])
        assert fmt.dim == LATENT_DIM and fmt.model == MODEL["id"] and np.isfinite(mu).all()
    if "decoded/depth" in outputs:  # metres in range, or NaN where the decoded validity (untrained here) says none
        decoded = image_to_numpy(outputs["decoded/depth"])
        assert not np.isinf(decoded).any() and (np.isnan(decoded) | ((decoded >= 0) & (decoded <= 10))).all()
    if "depth/image" in outputs:
        depth = image_to_numpy(outputs["depth/image"])
        assert depth.shape == (getattr(frame.image, "height", HEIGHT), getattr(frame.image, "width", WIDTH))
    return outputs


def refused(processor, name: str, frame: Frame, error, match: str):
    """The frame is refused as a node counts a reject, with a sentence naming the problem; the next good
    frame is answered."""
    with pytest.raises(BAD_INPUT) as raised:
        processor(frame)
    assert isinstance(raised.value, error), f"{type(raised.value).__name__}: {raised.value}"
    text = str(raised.value)
    assert match in text, text
    assert "\n" not in text and "Traceback" not in text
    answers(processor, name)
    return raised.value


# --- colour images with every wrong field --------------------------------------------------------
def _data(n):
    return lambda m: m.data[:n] if n < 0 else m.data + bytes(n)


IMAGE_FAULTS = {
    "unknown_encoding": ({"encoding": "hsv8"}, "encoding 'hsv8'"),
    "empty_encoding": ({"encoding": ""}, "encoding ''"),
    "none_encoding": ({"encoding": None}, "encoding None"),
    "int_encoding": ({"encoding": 3}, "encoding 3"),
    "bytes_encoding": ({"encoding": b"rgb8"}, "encoding b'rgb8'"),
    "depth_32fc1_as_colour": ({"encoding": "32FC1"}, "encoding '32FC1'"),
    "depth_16uc1_as_colour": ({"encoding": "16UC1"}, "encoding '16UC1'"),
    "opencv_8uc3_as_colour": ({"encoding": "8UC3"}, "encoding '8UC3'"),
    "upper_case_encoding": ({"encoding": "RGB8"}, "encoding 'RGB8'"),
    "data_one_byte_short": ({"data": _data(-1)}, "expected step x height"),
    "data_one_row_short": ({"data": _data(-WIDTH * 3)}, "expected step x height"),
    "data_one_byte_long": ({"data": _data(1)}, "expected step x height"),
    "data_empty": ({"data": b""}, "data holds 0 bytes"),
    "step_below_width": ({"step": WIDTH * 3 - 1}, "is smaller than width"),
    "step_zero": ({"step": 0}, "is smaller than width"),
    "step_negative": ({"step": -WIDTH * 3}, "is smaller than width"),
    "step_padded_without_data": ({"step": WIDTH * 3 + 4}, "expected step x height"),
    "width_zero": ({"width": 0}, "expected a width and height of at least 1"),
    "height_zero": ({"height": 0}, "expected a width and height of at least 1"),
    "zero_by_zero": ({"width": 0, "height": 0, "step": 0, "data": b""}, "at least 1"),
    "width_negative": ({"width": -WIDTH}, "at least 1"),
    "height_negative": ({"height": -1}, "at least 1"),
    "width_huge": ({"width": MAX_IMAGE_SIDE + 1}, f"at most {MAX_IMAGE_SIDE} pixels"),
    "height_huge": ({"height": 2**31}, f"at most {MAX_IMAGE_SIDE} pixels"),
    "over_a_gibibyte": ({"encoding": "rgba16", "width": MAX_IMAGE_SIDE, "height": MAX_IMAGE_SIDE,
                         "step": MAX_IMAGE_SIDE * 8}, "bytes accepted"),
    "height_float": ({"height": float(HEIGHT)}, "height is 48.0; expected a whole number"),
    "width_bool": ({"width": True}, "width is True; expected a whole number"),
    "step_string": ({"step": "192"}, "step is '192'; expected a whole number"),
    "width_none": ({"width": None}, "width is None"),
    "data_none": ({"data": None}, "image data of type 'NoneType' is not a byte sequence"),
    "data_string": ({"data": "x" * (WIDTH * HEIGHT * 3)}, "is not a byte sequence"),
    "data_dict": ({"data": {"pixels": 1}}, "is not a byte sequence"),
    "data_ints_over_255": ({"data": lambda m: [300] * len(m.data)}, "is not a byte sequence"),
    "data_float_array": ({"data": lambda m: np.zeros(len(m.data), np.float32)}, "expected step x height"),
}


@pytest.mark.parametrize("name", IMAGE_TAKERS)
@pytest.mark.parametrize("fault", list(IMAGE_FAULTS))
def test_a_colour_image_with_a_wrong_field_is_refused_and_the_next_frame_answered(procs, name, fault):
    changes, match = IMAGE_FAULTS[fault]
    good = _good_frame(name, 1)
    refused(procs[name], name, Frame(_hostile(good.image, **changes), depth=good.depth), ImageConversionError, match)


@pytest.mark.parametrize("value", [1, 2, 255, -1, None, "yes"])
def test_is_bigendian_does_not_change_single_byte_pixels(procs, value):
    """8-bit pixels have no byte order: any is_bigendian value reads the same pixels."""
    image = _rgb(2)
    expected = answers(procs["depth_estimator"], "depth_estimator", Frame(image))
    got = answers(procs["depth_estimator"], "depth_estimator", Frame(_hostile(image, is_bigendian=value)))
    np.testing.assert_array_equal(image_to_numpy(got["depth/image"]), image_to_numpy(expected["depth/image"]))


@pytest.mark.parametrize("bigendian", [0, 1])
def test_16_bit_colour_is_read_in_its_byte_order(procs, bigendian):
    pixels = RNG.integers(0, 65536, (HEIGHT, WIDTH, 3), dtype=np.uint16)
    msg = numpy_to_image(pixels, "rgb16", _header(3))
    if bigendian:
        msg = _hostile(msg, is_bigendian=1, data=pixels.astype(">u2").tobytes())
    got = answers(procs["depth_estimator"], "depth_estimator", Frame(msg))
    same = answers(procs["depth_estimator"], "depth_estimator",
                   Frame(numpy_to_image((pixels >> 8).astype(np.uint8), "rgb8", _header(3))))
    np.testing.assert_array_equal(image_to_numpy(got["depth/image"]), image_to_numpy(same["depth/image"]))


EXTREME_SIZES = [(1, 1), (2, 2), (3, 1), (MAX_IMAGE_SIDE, 1), (1, MAX_IMAGE_SIDE)]


@pytest.mark.parametrize("name", IMAGE_TAKERS)
@pytest.mark.parametrize("size", EXTREME_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_image_of_an_extreme_but_allowed_size_is_answered_at_its_size(procs, name, size):
    width, height = size
    depth = _depth(22, width, height) if name == "rgbd_encoder" else None
    answers(procs[name], name, Frame(_rgb(22, width, height), depth=depth))
    answers(procs[name], name)


def test_a_padded_step_reads_the_same_pixels(procs):
    image = _rgb(23)
    row = WIDTH * 3
    padded = _hostile(image, step=row + 5, data=b"".join(bytes(image.data)[r * row:(r + 1) * row] + b"\xff" * 5
                                                        for r in range(HEIGHT)))
    a = answers(procs["depth_estimator"], "depth_estimator", Frame(padded))
    b = answers(procs["depth_estimator"], "depth_estimator", Frame(image))
    np.testing.assert_array_equal(image_to_numpy(a["depth/image"]), image_to_numpy(b["depth/image"]))


# --- every supported encoding: answered when whole, refused when truncated -------------------------
def _in_encoding(encoding: str, width: int = WIDTH, height: int = HEIGHT, i: int = 4) -> Image:
    wide = encoding.endswith("16") or encoding == "mono16"
    channels = 1 if encoding.startswith(("mono", "bayer")) else 2 if encoding in ("yuv422", "uyvy", "yuv422_yuy2",
                                                                                  "yuyv") else \
        4 if "a" in encoding.replace("bayer", "") else 3
    dtype = np.uint16 if wide else np.uint8
    shape = (height, width) if channels == 1 else (height, width, channels)
    return numpy_to_image(RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype), encoding, _header(i))


def test_the_battery_covers_every_supported_encoding():
    assert {"yuv422_yuy2", "yuyv", "uyvy", "rgb16", "bgr16", "bayer_rggb8", "bayer_grbg8"} <= set(RGB_ENCODINGS)


@pytest.mark.parametrize("name", ["depth_estimator", "rgbd_encoder"])
@pytest.mark.parametrize("encoding", RGB_ENCODINGS)
def test_every_supported_encoding_is_answered(procs, name, encoding):
    answers(procs[name], name, Frame(_in_encoding(encoding), depth=_depth(4) if name == "rgbd_encoder" else None))


@pytest.mark.parametrize("encoding", RGB_ENCODINGS)
def test_every_supported_encoding_truncated_is_refused(procs, encoding):
    msg = _in_encoding(encoding)
    refused(procs["depth_estimator"], "depth_estimator", Frame(_hostile(msg, data=_data(-msg.step))),
            ImageConversionError, "expected step x height")


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_of_odd_width_is_refused(procs, encoding):
    msg = _hostile(_in_encoding(encoding), width=WIDTH - 1, step=(WIDTH - 1) * 2,
                   data=bytes(HEIGHT * (WIDTH - 1) * 2))
    refused(procs["depth_estimator"], "depth_estimator", Frame(msg), ImageConversionError, "the width must be even")


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 9)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_smaller_than_one_cell_is_refused(procs, pattern, size):
    width, height = size
    msg = numpy_to_image(np.zeros((height, width), np.uint8), f"bayer_{pattern}8", _header(5))
    refused(procs["depth_estimator"], "depth_estimator", Frame(msg), ImageConversionError, "at least 2x2 pixels")


# --- compressed images ----------------------------------------------------------------------------
def _compressed(fmt="jpeg", data=None, i=6, rgb=None):
    msg = rgb_to_compressed_msg(RNG.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) if rgb is None else rgb,
                                "png" if fmt == "png" else "jpeg", _header(i))
    if fmt not in ("jpeg", "png"):
        msg.format = fmt
    if data is not None:
        msg.data = data(bytes(msg.data)) if callable(data) else data
    return msg


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # The header, then 8 bytes of garbage where the pixels should be.
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", bytes(8)))


COMPRESSED_FAULTS = {
    "random_bytes": (lambda: _compressed(data=bytes(RNG.integers(0, 256, 500, dtype=np.uint8))), "not a readable"),
    "empty_data": (lambda: _compressed(data=b""), "of 0 bytes"),
    "jpeg_truncated": (lambda: _compressed(data=lambda d: d[: len(d) // 3]), "compressed JPEG image"),
    "png_truncated": (lambda: _compressed("png", data=lambda d: d[: len(d) // 2]), "compressed PNG image"),
    "png_header_only": (lambda: _compressed("png", data=_png_header(WIDTH, HEIGHT)), "compressed PNG image"),
    "oversize_png_header": (lambda: _compressed("png", data=_png_header(MAX_IMAGE_SIDE + 1, 4)), "at most"),
    "huge_png_header": (lambda: _compressed("png", data=_png_header(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)),
                        "compressed"),
    "unknown_format_bmp": (lambda: _compressed("bmp"), "is not a jpeg or png colour image"),
    "empty_format": (lambda: _compressed(""), "format '' is not"),
    "compressed_depth": (lambda: _compressed("16UC1; compressedDepth png"), "compressedDepth is not a colour"),
    "two_formats": (lambda: _compressed("jpeg png"), "is not a jpeg or png"),
}


@pytest.mark.skipif(not COMPRESSED_INPUT, reason="the processors take no compressed images yet")
@pytest.mark.parametrize("name", ["depth_estimator", "rgbd_pipeline"])
@pytest.mark.parametrize("fault", list(COMPRESSED_FAULTS))
def test_a_damaged_compressed_image_is_refused_and_the_next_frame_answered(procs, name, fault):
    make, match = COMPRESSED_FAULTS[fault]
    refused(procs[name], name, Frame(make()), ImageConversionError, match)
    answers(procs[name], name, Frame(_compressed("png", i=7)))


@pytest.mark.skipif(not COMPRESSED_INPUT, reason="the processors take no compressed images yet")
@pytest.mark.parametrize("fmt", ["jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8"])
def test_a_compressed_image_is_answered_like_the_raw_one(procs, fmt):
    rgb = RNG.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    kind = "png" if "png" in fmt else "jpeg"
    msg = _compressed(kind, rgb=rgb)
    msg.format = fmt
    got = answers(procs["depth_estimator"], "depth_estimator", Frame(msg))
    if kind == "png":  # lossless: the same pixels, the same depth
        raw = answers(procs["depth_estimator"], "depth_estimator", Frame(numpy_to_image(rgb, "rgb8", _header(6))))
        np.testing.assert_array_equal(image_to_numpy(got["depth/image"]), image_to_numpy(raw["depth/image"]))


# --- measured depth: the encoder refuses what it cannot use; the pipeline falls back to the estimate --
def _depth_msg(pixels: np.ndarray, encoding: str = "32FC1", i: int = 8) -> Image:
    return numpy_to_image(pixels, encoding, _header(i))


def _places(value, fraction=0.25):
    pixels = RNG.uniform(0.5, 5.0, (HEIGHT, WIDTH)).astype(np.float32)
    pixels[RNG.random((HEIGHT, WIDTH)) < fraction] = value
    return _depth_msg(pixels)


def _one_pixel(value):
    pixels = RNG.uniform(0.5, 5.0, (HEIGHT, WIDTH)).astype(np.float32)
    pixels[HEIGHT // 3, WIDTH // 5] = value
    return _depth_msg(pixels)


DEPTH_REFUSED = {
    "negative_everywhere": (lambda: _depth_msg(np.full((HEIGHT, WIDTH), -1.0, np.float32)), StageError,
                            f"depth holds {WIDTH * HEIGHT} negative values"),
    "negative_in_places": (lambda: _places(-0.5), StageError, "negative values; expected metres >= 0"),
    "one_negative_pixel": (lambda: _one_pixel(-1e-6), StageError, "depth holds 1 negative values"),
    "rgb8_as_depth": (lambda: _rgb(8), ImageConversionError, "depth image has encoding 'rgb8'; expected 32FC1"),
    "mono8_as_depth": (lambda: _depth_msg(np.zeros((HEIGHT, WIDTH), np.uint8), "mono8"), ImageConversionError,
                       "encoding 'mono8'"),
    "8UC1_as_depth": (lambda: _depth_msg(np.zeros((HEIGHT, WIDTH), np.uint8), "8UC1"), ImageConversionError,
                      "encoding '8UC1'"),
    "32FC3_as_depth": (lambda: _depth_msg(np.ones((HEIGHT, WIDTH, 3), np.float32), "32FC3"), ImageConversionError,
                       "encoding '32FC3'"),
    "unknown_depth_encoding": (lambda: _hostile(_depth(8), encoding="depth"), ImageConversionError,
                               "encoding 'depth'"),
    "none_depth_encoding": (lambda: _hostile(_depth(8), encoding=None), ImageConversionError, "encoding None"),
    "truncated_32FC1": (lambda: _hostile(_depth(8), data=_data(-4)), ImageConversionError, "expected step x height"),
    "truncated_16UC1": (lambda: _hostile(_depth_msg(np.ones((HEIGHT, WIDTH), np.uint16), "16UC1"), data=_data(-1)),
                        ImageConversionError, "expected step x height"),
    "step_below_width": (lambda: _hostile(_depth(8), step=WIDTH * 4 - 4), ImageConversionError,
                         "is smaller than width"),
    "zero_by_zero": (lambda: _hostile(_depth(8), width=0, height=0, step=0, data=b""), ImageConversionError,
                     "at least 1"),
    "huge_height": (lambda: _hostile(_depth(8), height=MAX_IMAGE_SIDE + 1), ImageConversionError, "at most"),
    "another_aspect_square": (lambda: _depth(8, 48, 48), StageError,
                              "depth is 48x48 and the image 64x48: another aspect"),
    "another_aspect_wide": (lambda: _depth(8, 64, 32), StageError, "another aspect"),
    "another_aspect_portrait": (lambda: _depth(8, 48, 64), StageError, "another aspect"),
    "another_aspect_a_row": (lambda: _depth(8, 64, 1), StageError, "another aspect"),
}


@pytest.mark.parametrize("case", list(DEPTH_REFUSED))
def test_a_depth_the_encoder_cannot_use_is_refused_and_the_next_frame_answered(procs, case):
    make, error, match = DEPTH_REFUSED[case]
    refused(procs["rgbd_encoder"], "rgbd_encoder", Frame(_rgb(8), depth=make()), error, match)


@pytest.mark.parametrize("case", list(DEPTH_REFUSED))
def test_a_depth_the_pipeline_cannot_use_is_counted_and_the_estimate_encoded(procs, case):
    make, _, match = DEPTH_REFUSED[case]
    pipeline, image = procs["rgbd_pipeline"], _rgb(9)
    estimated = answers(pipeline, "rgbd_pipeline", Frame(image))
    assert pipeline.counts["measured_depth_unused"] == 0
    got = answers(pipeline, "rgbd_pipeline", Frame(image, depth=make()))  # every output still goes out
    assert pipeline.counts["measured_depth_unused"] == 1 and match in pipeline.reasons["measured_depth_unused"]
    np.testing.assert_array_equal(_mu_of(got["latent"]), _mu_of(estimated["latent"]))
    assert "depth=estimated" in got["latent"].format
    np.testing.assert_array_equal(image_to_numpy(got["depth/image"]), image_to_numpy(estimated["depth/image"]))
    answers(pipeline, "rgbd_pipeline", Frame(_rgb(10), depth=_depth(10)))
    assert pipeline.counts["measured_depth_unused"] == 1


def _big_endian_32fc1():
    pixels = RNG.uniform(0.5, 5.0, (HEIGHT, WIDTH)).astype(np.float32)
    return (_hostile(_depth_msg(pixels), is_bigendian=1, data=pixels.astype(">f4").tobytes()), _depth_msg(pixels))


def _mm(values) -> Image:
    return _depth_msg(np.asarray(values, np.uint16) * np.ones((HEIGHT, WIDTH), np.uint16), "16UC1")


NO_READING = np.full((HEIGHT, WIDTH), np.nan, np.float32)
DEPTH_USED = {  # name -> () -> (depth message, a message that must encode the same, or None)
    "nan_everywhere": lambda: (_depth_msg(NO_READING), None),
    "inf_everywhere": lambda: (_depth_msg(np.full((HEIGHT, WIDTH), np.inf, np.float32)), _depth_msg(NO_READING)),
    "zero_everywhere": lambda: (_depth_msg(np.zeros((HEIGHT, WIDTH), np.float32)), _depth_msg(NO_READING)),
    "16UC1_zero_everywhere": lambda: (_mm(0), _depth_msg(NO_READING)),
    "16UC1_65535_everywhere": lambda: (_mm(65535), _depth_msg(np.full((HEIGHT, WIDTH), 65.535, np.float32))),
    "16UC1_0_and_65535": lambda: (_mm(np.where(np.arange(WIDTH) % 2, 65535, 0)), None),
    "mono16_as_16UC1": lambda: (_depth_msg(np.full((HEIGHT, WIDTH), 1500, np.uint16), "mono16"),
                                _depth_msg(np.full((HEIGHT, WIDTH), 1.5, np.float32))),
    "64FC1": lambda: (_depth_msg(np.full((HEIGHT, WIDTH), 2.5, np.float64), "64FC1"),
                      _depth_msg(np.full((HEIGHT, WIDTH), 2.5, np.float32))),
    "nan_in_places": lambda: (_places(np.nan), None),
    "inf_in_places": lambda: (_places(np.inf), None),
    "minus_inf_everywhere": lambda: (_depth_msg(np.full((HEIGHT, WIDTH), -np.inf, np.float32)),
                                     _depth_msg(NO_READING)),  # REP 118: too close to measure
    "minus_inf_in_places": lambda: (_places(-np.inf), None),
    "big_endian_32FC1": _big_endian_32fc1,
    "padded_step": lambda: ((lambda d: _hostile(d, step=WIDTH * 4 + 8, data=b"".join(
        bytes(d.data)[r * WIDTH * 4:(r + 1) * WIDTH * 4] + bytes(8) for r in range(HEIGHT))))(_depth(8)), None),
    "same_aspect_half_size": lambda: (_depth(8, WIDTH // 2, HEIGHT // 2), None),
    "same_aspect_double_size": lambda: (_depth(8, WIDTH * 2, HEIGHT * 2), None),
    "same_aspect_quarter_size": lambda: (_depth(8, WIDTH // 4, HEIGHT // 4), None),
    "same_aspect_within_a_pixel": lambda: (_depth(8, WIDTH + 1, HEIGHT), None),
}


@pytest.mark.parametrize("case", list(DEPTH_USED))
def test_a_depth_with_no_readings_or_another_size_of_the_same_aspect_is_used(procs, case):
    """NaN, inf and 0 are no reading (REP 118), not an error; the same aspect at another size is resized."""
    depth, same = DEPTH_USED[case]()
    image = _rgb(11)
    got = answers(procs["rgbd_encoder"], "rgbd_encoder", Frame(image, depth=depth))
    if same is not None:
        expected = answers(procs["rgbd_encoder"], "rgbd_encoder", Frame(image, depth=same))
        np.testing.assert_allclose(_mu_of(got["latent"]), _mu_of(expected["latent"]),
                                   atol=1e-6)
    pipeline = procs["rgbd_pipeline"]
    answers(pipeline, "rgbd_pipeline", Frame(image, depth=depth))
    assert pipeline.counts["measured_depth_unused"] == 0, pipeline.reasons


def test_an_encoder_for_rgb_d_refuses_an_image_without_its_depth(procs):
    refused(procs["rgbd_encoder"], "rgbd_encoder", Frame(_rgb(12)), StageError, "a depth image is needed")


# --- camera_info: refused, counted, not republished; the depth itself still goes out ---------------
K = [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0]


def _k(**at):
    k = list(K)
    for index, value in at.items():
        k[int(index[1:])] = value
    return k


CAMERA_INFO_REJECTED = {
    "zero_k": (lambda: _info(k=[0.0] * 9), "K is not finite with fx, fy > 0"),
    "nan_k": (lambda: _info(k=[float("nan")] * 9), "K is not finite"),
    "nan_fx": (lambda: _info(k=_k(k0=float("nan"))), "K is not finite"),
    "nan_cx": (lambda: _info(k=_k(k2=float("nan"))), "K is not finite"),
    "inf_fy": (lambda: _info(k=_k(k4=float("inf"))), "K is not finite"),
    "negative_fx": (lambda: _info(k=_k(k0=-50.0)), "fx, fy > 0"),
    "negative_fy": (lambda: _info(k=_k(k4=-50.0)), "fx, fy > 0"),
    "zero_fy": (lambda: _info(k=_k(k4=0.0)), "fx, fy > 0"),
    "k_of_8_values": (lambda: types.SimpleNamespace(header=_header(), width=WIDTH, height=HEIGHT, k=K[:8]),
                      "K is not finite"),
    "zero_by_zero": (lambda: _info(0, 0), "camera_info is 0x0; expected a calibrated size"),
    "zero_width": (lambda: _info(0, HEIGHT), "camera_info is 0x48"),
    "another_aspect_square": (lambda: _info(100, 100), "camera_info is 100x100, another aspect than the 64x48 image"),
    "another_aspect_portrait": (lambda: _info(HEIGHT, WIDTH), "another aspect"),
    "another_aspect_wide": (lambda: _info(1280, 480), "another aspect"),
    "huge": (lambda: _info(2**32 - 1, 2**32 - 1), "another aspect"),
    "huge_width": (lambda: _info(2**32 - 1, HEIGHT), "another aspect"),
}


@pytest.mark.parametrize("name", ["depth_estimator", "rgbd_pipeline"])
@pytest.mark.parametrize("case", list(CAMERA_INFO_REJECTED))
def test_a_camera_info_that_cannot_describe_the_image_is_counted_and_not_republished(procs, name, case):
    make, match = CAMERA_INFO_REJECTED[case]
    processor = procs[name]
    got = answers(processor, name, Frame(_rgb(13), camera_info=make()))  # depth/camera_info is not among them
    assert processor.counts["camera_info_rejected"] == 1 and match in processor.reasons["camera_info_rejected"]
    good = answers(processor, name, Frame(_rgb(14), camera_info=_info(WIDTH * 2, HEIGHT * 2, k=[2 * v for v in K])),
                   expected=EXPECTED[name] | WITH_CAMERA_INFO[name])
    info = good["depth/camera_info"]
    assert (info.width, info.height) == (WIDTH, HEIGHT) and list(info.k[:6]) == K[:6]  # scaled to the image
    assert processor.counts["camera_info_rejected"] == 1
    assert "depth/image" in got


@pytest.mark.parametrize("size, scale", [((WIDTH, HEIGHT), 1.0), ((WIDTH * 10, HEIGHT * 10), 0.1),
                                         ((WIDTH // 2, HEIGHT // 2), 2.0), ((WIDTH + 1, HEIGHT), WIDTH / (WIDTH + 1))],
                         ids=["same_size", "ten_times", "half", "within_a_pixel"])
def test_a_camera_info_of_the_same_aspect_is_scaled_to_the_depth(procs, size, scale):
    processor = procs["depth_estimator"]
    got = answers(processor, "depth_estimator", Frame(_rgb(15), camera_info=_info(*size)),
                  expected=EXPECTED["depth_estimator"] | WITH_CAMERA_INFO["depth_estimator"])
    info = got["depth/camera_info"]
    assert (info.width, info.height) == (WIDTH, HEIGHT) and info.k[0] == pytest.approx(50.0 * scale)
    assert info.header.stamp == _header(15).stamp and not processor.counts["camera_info_rejected"]


def test_a_camera_info_100_s_older_than_the_image_is_not_paired():
    assembler = FrameAssembler(0.02, ("camera_info",))
    old = _info(i=0)
    old.header.stamp.sec -= 100
    assert assembler.add("camera_info", old) == []
    assert assembler.add("camera_info", _info(i=0)) == []
    assert assembler.add("image", _rgb(-200)) != []  # older than any info: decided, paired with none
    frames = assembler.add("image", _rgb(0)) + assembler.flush()
    assert [f.camera_info.header.stamp.sec for f in frames] == [3000]


# --- latents: the decoder refuses what it cannot decode, and never publishes a non-finite output -----
def _mu(value, where=slice(None)):
    mu = np.zeros(LATENT_DIM, np.float32)
    mu[where] = value
    return mu


def _coded(i, fmt, data):
    return CompressedImage(header=_header(i), format=fmt, data=data)


LATENT_FAULTS = {
    "dim_15": (lambda: _latent(dim=15), LatentError, "latent has dim 15; this decoder takes 16"),
    "dim_17": (lambda: _latent(dim=17), LatentError, "latent has dim 17"),
    "dim_1": (lambda: _latent(dim=1), LatentError, "latent has dim 1"),
    "dim_4096": (lambda: _latent(dim=4096), LatentError, "latent has dim 4096"),
    "another_model": (lambda: _latent(model="ffffffffffff"), LatentError, "latent of model ffffffffffff; this decoder is"),
    "another_model_q8": (lambda: _latent(codec="q8", model="000000000000"), LatentError, "latent of model 000000000000"),
    "nan_mu": (lambda: _latent(mu=_mu(np.nan)), LatentError, "NaN or infinite"),
    "one_nan": (lambda: _latent(mu=_mu(np.nan, 3)), LatentError, "NaN or infinite"),
    "inf_mu": (lambda: _latent(mu=_mu(np.inf, 0)), LatentError, "NaN or infinite"),
    "minus_inf_mu": (lambda: _latent(mu=_mu(-np.inf)), LatentError, "NaN or infinite"),
    "nan_mu_f16": (lambda: _latent(mu=_mu(np.nan), codec="f16"), LatentError, "NaN or infinite"),
    "inf_mu_f16": (lambda: _latent(mu=_mu(np.inf, 2), codec="f16"), LatentError, "NaN or infinite"),
    "nan_logvar": (lambda: _latent(mu=_mu(0.0), logvar=_mu(np.nan)), LatentError, "log σ² holds NaN"),
    "max_float_everywhere": (lambda: _latent(mu=_mu(3.4e38)), StageError,
                             "latent holds a value of magnitude 3.4e+38"),
    "min_float_everywhere": (lambda: _latent(mu=_mu(-3.4e38)), StageError, "latent holds a value of magnitude"),
    "f32_truncated": (lambda: _coded(16, _latent_format(), bytes(4 * LATENT_DIM - 4)), LatentError,
                      f"holds {4 * LATENT_DIM - 4} bytes"),
    "f32_one_byte_more": (lambda: _coded(16, _latent_format(), bytes(4 * LATENT_DIM + 1)), LatentError, "bytes"),
    "f16_of_f32_size_plus_2": (lambda: _coded(16, _latent_format(codec="f16"), bytes(2 * LATENT_DIM + 2)),
                               LatentError, "bytes"),
    "q8_short": (lambda: _coded(16, _latent_format(codec="q8"), bytes(LATENT_DIM - 1)), LatentError,
                 f"takes {LATENT_DIM}"),
    "q8_with_logvar_size": (lambda: _coded(16, _latent_format(codec="q8"), bytes(2 * LATENT_DIM)), LatentError,
                            "bytes"),
    "q4_long": (lambda: _coded(16, _latent_format(codec="q4"), bytes(LATENT_DIM)), LatentError,
                f"takes {LATENT_DIM // 2}"),
    "empty_data": (lambda: _coded(16, _latent_format(), b""), LatentError, "holds 0 bytes"),
    "data_of_text": (lambda: types.SimpleNamespace(header=_header(16), format=_latent_format(),
                                                   data="mu" * LATENT_DIM * 2), LatentError, "not a byte sequence"),
    "format_jpeg": (lambda: _coded(16, "jpeg", bytes(4 * LATENT_DIM)), LatentError, "does not start with"),
    "format_empty": (lambda: _coded(16, "", bytes(4 * LATENT_DIM)), LatentError, "does not start with"),
    "format_none": (lambda: types.SimpleNamespace(header=_header(16), format=None, data=bytes(4 * LATENT_DIM)),
                    LatentError, "expected text"),
    "format_info": (lambda: _coded(16, f"rgbd_vae_latent_info; v=1; dim={LATENT_DIM}; model={MODEL['id']}",
                                   bytes(8 * LATENT_DIM)), LatentError, "does not start with"),
    "format_keys_swapped": (lambda: _coded(16, _latent_format().replace("dim=16; codec=f32", "codec=f32; dim=16"),
                                           bytes(4 * LATENT_DIM)), LatentError, "keys in this order"),
    "format_version_2": (lambda: _coded(16, _latent_format().replace("v=1", "v=2"), bytes(4 * LATENT_DIM)),
                         LatentError, "v=2"),
    "format_codec_q2": (lambda: _coded(16, _latent_format(codec="q2"), bytes(LATENT_DIM)), LatentError, "q2"),
    "format_depth_lidar": (lambda: _coded(16, _latent_format().replace("measured", "lidar"), bytes(4 * LATENT_DIM)),
                           LatentError, "lidar"),
    "format_dim_huge": (lambda: _coded(16, _latent_format(dim=10 ** 9), bytes(4)), LatentError, "dim=1000000000"),
}


@pytest.mark.parametrize("case", list(LATENT_FAULTS))
def test_a_latent_the_decoder_cannot_decode_is_refused_and_the_next_latent_answered(procs, case):
    make, error, match = LATENT_FAULTS[case]
    refused(procs["rgbd_decoder"], "rgbd_decoder", Frame(make()), error, match)


FAR_LATENTS = {
    "max_float_in_one_dimension": _mu(3.4e38, 5),
    "min_float_in_one_dimension": _mu(-3.4e38, 5),
    "1e30_everywhere": _mu(1e30),
}


@pytest.mark.parametrize("case", list(FAR_LATENTS))
def test_a_latent_far_outside_the_encoders_range_is_refused(procs, case):
    refused(procs["rgbd_decoder"], "rgbd_decoder", Frame(_latent(mu=FAR_LATENTS[case])), StageError, "latent")


def test_a_latent_with_logvar_or_in_any_codec_is_decoded_like_its_mu(procs):
    decoder, mu = procs["rgbd_decoder"], np.clip(RNG.normal(0, 0.01, LATENT_DIM), -0.02, 0.02)
    plain = answers(decoder, "rgbd_decoder", Frame(_latent(17, mu=mu)))
    with_logvar = answers(decoder, "rgbd_decoder", Frame(_latent(17, mu=mu, logvar=np.zeros(LATENT_DIM))))
    np.testing.assert_array_equal(image_to_numpy(plain["decoded/depth"]), image_to_numpy(with_logvar["decoded/depth"]))
    for codec in ("f16", "q8", "q4"):  # the decoder uses its metadata's table for q codes (same model id)
        coded = answers(decoder, "rgbd_decoder", Frame(_latent(17, mu=mu, codec=codec)))
        np.testing.assert_allclose(image_to_numpy(coded["decoded/depth"]), image_to_numpy(plain["decoded/depth"]),
                                   atol=0.5)


# --- parameters: problem() refuses each bad set with its sentence --------------------------------
BAD_PARAMETERS = {
    "backend_tflite": ({"backend": "tflite"}, "backend 'tflite' is not one of auto"),
    "backend_empty": ({"backend": ""}, "backend '' is not one of"),
    "device_tpu": ({"device": "tpu"}, "device 'tpu' is not one of"),
    "depth_encoding_mono16": ({"depth_encoding": "mono16"}, "depth_encoding 'mono16' is not one of 32FC1, 16UC1"),
    "depth_encoding_lower_case": ({"depth_encoding": "32fc1"}, "depth_encoding '32fc1'"),
    "reliable_input_sometimes": ({"reliable_input": "sometimes"}, "reliable_input 'sometimes' is not one of auto"),
    "min_depth_nan": ({"min_depth": float("nan")}, "min_depth is nan; expected a finite number"),
    "max_depth_inf": ({"max_depth": float("inf")}, "max_depth is inf; expected a finite number"),
    "sync_slop_nan": ({"sync_slop": float("nan")}, "sync_slop is nan"),
    "min_above_max": ({"min_depth": 5.0, "max_depth": 2.0}, "min_depth 5 m is not below max_depth 2 m"),
    "min_equal_max": ({"min_depth": 3.0, "max_depth": 3.0}, "min_depth 3 m is not below max_depth 3 m"),
    "output_width_alone": ({"output_width": 64}, "output_width is 64 and output_height 0; set both"),
    "output_height_alone": ({"output_height": 48}, "output_width is 0 and output_height 48; set both"),
    "fp16_on_cpu": ({"fp16": True, "device": "cpu"}, "fp16 needs a CUDA device and device is cpu"),
    "latent_codec_q2": ({"latent_codec": "q2"}, "latent_codec 'q2' is not one of f32, f16, q8, q4"),
    "latent_codec_upper_case": ({"latent_codec": "Q8"}, "latent_codec 'Q8' is not one of"),
    "latent_codec_empty": ({"latent_codec": ""}, "latent_codec '' is not one of"),
    "latent_logvar_with_q8": ({"latent_codec": "q8", "latent_logvar": True},
                              "latent_logvar is true with latent_codec q8; log sigma^2 travels only with f32 or f16"),
    "latent_logvar_with_q4": ({"latent_codec": "q4", "latent_logvar": True}, "latent_logvar is true with latent_codec q4"),
}
if "image_transport" in defaults():
    BAD_PARAMETERS["image_transport_theora"] = ({"image_transport": "theora"}, "image_transport 'theora' is not one of")


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_a_bad_parameter_set_is_refused_with_its_sentence(case):
    changes, sentence = BAD_PARAMETERS[case]
    reason = problem({**defaults(), **changes}, lambda: False)
    assert reason is not None and sentence in reason, reason
    assert "\n" not in reason
    assert problem(defaults(), lambda: False) is None  # the defaults that follow are fine


def test_fp16_on_a_machine_without_cuda_is_refused():
    reason = problem({**defaults(), "fp16": True}, lambda: False)
    assert reason == "fp16 needs a CUDA device and this machine has none; set fp16 to false"


# --- min/max depth: what lies outside is no reading, never a clamped value ------------------------
@pytest.fixture(scope="module")
def unbanded(built):
    """One image and its depth with the widest band."""
    processor, params = built["depth_estimator"]
    image = _rgb(18)
    saved = dict(params)
    params.update(min_depth=0.0, max_depth=100.0, depth_encoding="32FC1")
    try:
        depth = image_to_numpy(dict(processor(Frame(image)))["depth/image"])
    finally:
        params.update(saved)
    assert np.isfinite(depth).all()
    return image, depth


BANDS = {"near_quarter": (None, 25), "middle_half": (25, 75), "far_quarter": (75, None), "max_0.5_m": (None, "0.5"),
         "one_value": (50, 50.5)}


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
@pytest.mark.parametrize("band", list(BANDS))
def test_depth_outside_min_and_max_depth_is_no_reading_never_clamped(built, procs, unbanded, band, encoding):
    image, full = unbanded
    low_at, high_at = BANDS[band]
    low = 0.0 if low_at is None else float(np.percentile(full, low_at))
    high = float(high_at) if isinstance(high_at, str) else 100.0 if high_at is None else float(
        np.percentile(full, high_at))
    high = max(high, low + 1e-3)
    _params(built, "depth_estimator").update(min_depth=low, max_depth=high, depth_encoding=encoding)
    out = answers(procs["depth_estimator"], "depth_estimator", Frame(image))
    msg = out["depth/image"]
    assert msg.encoding == encoding
    depth = image_to_numpy(msg)
    inside = (full >= low) & (full <= high)
    if encoding == "32FC1":
        np.testing.assert_array_equal(depth[inside], full[inside])
        assert np.isnan(depth[~inside]).all()
    else:  # millimetres, 0 = no reading: never 500 mm for a pixel beyond max_depth 0.5 m
        np.testing.assert_array_equal(depth[inside], np.rint(full[inside] * 1000).astype(np.uint16))
        assert (depth[~inside] == 0).all()
    assert (~inside).any() or band == "far_quarter"


# --- model files: refused at load with a sentence; a good model loads after ------------------------
def _truncated(folder, part):
    data = (folder / f"{part}.onnx").read_bytes()
    return data[: len(data) // 2]


MODEL_FAULTS = {
    "missing": (DepthEstimator, lambda tmp, models: tmp / "missing.onnx", "does not exist"),
    "empty_file": (DepthEstimator, lambda tmp, models: _write(tmp / "empty.onnx", b""), "empty.onnx"),
    "png_bytes": (DepthEstimator, lambda tmp, models: _write(tmp / "foreign.onnx", b"\x89PNG\r\n\x1a\n" * 10),
                  "foreign.onnx"),
    "truncated_onnx": (DepthEstimator, lambda tmp, models: _write(tmp / "depth.onnx",
                                                                  _truncated(models["unet_depth"][0], "depth")),
                       "depth.onnx"),
    "decoder_as_depth": (DepthEstimator, lambda tmp, models: models["conv_vae"][0] / "decoder.onnx", "depth"),
    "depth_as_encoder": (Encoder, lambda tmp, models: models["unet_depth"][0] / "depth.onnx", "encoder"),
    "empty_folder": (Decoder, lambda tmp, models: _mkdir(tmp / "nothing"), "nothing"),
    "empty_model_parameter": (Decoder, lambda tmp, models: "", "parameter 'model' is empty"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize("case", list(MODEL_FAULTS))
def test_a_bad_model_file_is_one_sentence_at_load_and_a_good_one_loads(exported, tmp_path, case):
    cls, make, match = MODEL_FAULTS[case]
    params = {**defaults(), "model": str(make(tmp_path, exported)), "backend": "onnxruntime"}
    with pytest.raises(LOAD_ERRORS) as raised:
        cls(params.__getitem__)
    assert match in str(raised.value) and "\n" not in str(raised.value).strip(), str(raised.value)
    name = {DepthEstimator: "depth_estimator", Encoder: "rgbd_encoder", Decoder: "rgbd_decoder"}[cls]
    params["model"] = str(exported["unet_depth" if cls is DepthEstimator else "conv_vae"][0])
    processor = cls(params.__getitem__)
    try:
        answers(processor, name)
    finally:
        processor.close()


def test_parts_of_different_checkpoints_are_refused_by_the_pipeline(exported, pipeline_models, tmp_path):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(pipeline_models, mixed)
    shutil.copy(exported["rgb2rgbd"][0] / "decoder.onnx", mixed / "decoder.onnx")
    with pytest.raises(LOAD_ERRORS, match="come from different checkpoints"):
        Pipeline({**defaults(), "model": str(mixed), "backend": "onnxruntime"}.__getitem__)


def _old_export(exported, tmp_path):
    """The small conv_vae's parts as an export made before the quantiser table: metadata without it."""
    import json

    import onnx

    from rgbd_vae_ros.inference.metadata import METADATA_KEY

    folder = tmp_path / "old_export"
    folder.mkdir()
    for part in ("encoder", "decoder"):
        proto = onnx.load(str(exported["conv_vae"][0] / f"{part}.onnx"))
        for entry in proto.metadata_props:
            if entry.key == METADATA_KEY:
                values = json.loads(entry.value)
                del values["latent_quantiser"]
                entry.value = json.dumps(values)
        onnx.save(proto, str(folder / f"{part}.onnx"))
    return folder


@pytest.mark.parametrize("codec", ["q8", "q4"])
def test_an_export_without_the_quantiser_table_refuses_q_codecs_at_configure_and_runs_f32_f16(exported, tmp_path,
                                                                                              codec):
    old = _old_export(exported, tmp_path)
    params = {**defaults(), "model": str(old), "backend": "onnxruntime", "latent_codec": codec}
    with pytest.raises(LOAD_ERRORS) as raised:
        Encoder(params.__getitem__)
    text = str(raised.value)
    assert f"latent_codec {codec} needs the latent quantiser table" in text and "set latent_codec to f32 or f16" in text
    assert "\n" not in text
    for codec_ok in ("f32", "f16"):
        params["latent_codec"] = codec_ok
        encoder = Encoder(params.__getitem__)
        try:
            out = answers(encoder, "rgbd_encoder")
            assert f"codec={codec_ok}" in out["latent"].format
            assert encoder.latched_messages(_header(0)) == []  # no table: no latent/info
        finally:
            encoder.close()
    decoder = Decoder(params.__getitem__)  # an old decoder decodes float codes and refuses q codes
    try:
        answers(decoder, "rgbd_decoder", Frame(_latent(30, mu=_mu(0.0))))
        refused(decoder, "rgbd_decoder", Frame(_latent(31, mu=_mu(0.0), codec=codec)), LatentError,
                f"latent in codec {codec} and no quantiser table of model {MODEL['id']} yet")
        decoder.side_input("latent/info", _info_message())  # the encoder's latent/info brings the table
        answers(decoder, "rgbd_decoder", Frame(_latent(32, mu=_mu(0.0), codec=codec)))
        decoder.side_input("latent/info", _info_message(model="ffffffffffff"))  # another model's: counted, ignored
        assert decoder.counts["latent_info_rejected"] == 1 and "ffffffffffff" in decoder.reasons["latent_info_rejected"]
    finally:
        decoder.close()


def _info_message(model=None):
    from rgbd_vae_ros.latent import build_info_message

    return build_info_message(_header(0), MODEL["quantiser"], model or MODEL["id"])


# --- frames the pairing leaves without a partner --------------------------------------------------
def test_an_image_whose_depth_is_half_a_second_away_is_refused_by_the_rgb_d_encoder(procs):
    assembler = FrameAssembler(0.02, ("depth",))
    far = _depth(20)
    far.header.stamp.nanosec = 507_000_000
    frames = assembler.add("depth", far) + assembler.add("image", _rgb(20)) + assembler.flush()
    assert len(frames) == 1 and frames[0].depth is None
    refused(procs["rgbd_encoder"], "rgbd_encoder", frames[0], StageError, "a depth image is needed")


def test_out_of_order_stamps_still_make_one_frame_each():
    assembler = FrameAssembler(0.02, ("depth",))
    frames = []
    for i in (5, 3, 4, 1):  # images and depths arriving out of order
        frames += assembler.add("depth", _depth(i)) + assembler.add("image", _rgb(i))
    frames += assembler.flush()
    assert sorted(f.image.header.stamp.sec for f in frames) == [3001, 3003, 3004, 3005]
    assert all(f.depth is None or f.depth.header.stamp == f.image.header.stamp for f in frames)


def test_images_of_ever_changing_sizes_keep_the_resize_cache_bounded(procs):
    from rgbd_vae_ros import processing

    for width in range(40, 190):  # 150 distinct widths (issue 13 #14)
        answers(procs["depth_estimator"], "depth_estimator", Frame(_rgb(21, width, 8)))
    cache = processing._RESIZE_WEIGHTS
    assert cache.nbytes <= cache.max_bytes


# --- live nodes: hostile messages over rclpy are counted and the next good frame is published -------
def _raw(i, height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3, size=None, bigendian=0) -> Image:
    return Image(header=_header(i), height=height, width=width, encoding=encoding, is_bigendian=bigendian,
                 step=step, data=bytes(step * height if size is None else size))


LIVE_IMAGE_FAULTS = [
    _raw(1, encoding="hsv8"),
    _raw(2, encoding=""),
    _raw(3, encoding="32FC1"),
    _raw(4, step=WIDTH * 3 - 1),
    _raw(5, size=WIDTH * HEIGHT * 3 - 1),
    _raw(6, size=WIDTH * HEIGHT * 3 + 7),
    _raw(7, height=0, width=0, step=0),
    _raw(8, width=100_000, step=300_000, size=10),
    _raw(9, encoding="yuv422", width=WIDTH - 1, step=(WIDTH - 1) * 2),
    _raw(10, encoding="bayer_rggb8", height=1, width=1, step=1),
]


def _live(harness, cls, model, **params):
    from rclpy.parameter import Parameter

    overrides = [Parameter(k, value=v) for k, v in {"model": str(model), "backend": "onnxruntime", **params}.items()]
    return harness.add(cls(context=harness.context, parameter_overrides=overrides))


def _stamped(messages, sec):
    return any(m.header.stamp.sec == sec for m in messages)


def _each_refused_then_answered(harness, node, send_bad, send_good, out, bad_count):
    for count, send in enumerate(send_bad, start=1):
        assert harness.wait_for(lambda: (send(), node.counters.rejected >= count)[1]), (count,
                                                                                       node.counters.last_reject)
    assert harness.wait_for(lambda: (send_good(), _stamped(out, 3099))[1])
    assert node.counters.rejected >= bad_count and node.counters.frames_out >= 2


def _pause():
    import time

    time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.ros
def test_live_depth_estimator_counts_hostile_images_and_answers_the_next(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = _live(harness, DepthEstimatorNode, exported["unet_depth"][0])
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, _rgb(0), lambda: depth)
    bad = [lambda m=m: (pub.publish(m), _pause()) for m in LIVE_IMAGE_FAULTS]
    _each_refused_then_answered(harness, node, bad, lambda: (pub.publish(_rgb(99)), _pause()), depth, len(bad))
    assert not any(3001 <= m.header.stamp.sec <= 3010 for m in depth)  # nothing published for the bad ones


@pytest.mark.slow
@pytest.mark.ros
def test_live_encoder_counts_hostile_images_and_depths_and_answers_the_next(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    node = _live(harness, RgbdEncoderNode, exported["conv_vae"][0], sync_slop=0.01)
    latent = harness.listen(CompressedImage, "latent")
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")

    def pair(rgb, depth):
        return lambda: (depth_pub.publish(depth), rgb_pub.publish(rgb), _pause())

    assert harness.wait_for(lambda: (pair(_rgb(0), _depth(0))(), latent)[1])
    bad = [pair(m, _depth(m.header.stamp.sec - 3000)) for m in LIVE_IMAGE_FAULTS[:6]]
    negative = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    negative[3, 3] = -1.0
    bad += [pair(_rgb(11), _depth(11, 48, 48)),  # another aspect
            pair(_rgb(12), numpy_to_image(negative, "32FC1", _header(12))),
            pair(_rgb(13), _rgb(13)),  # colour on the depth topic
            pair(_rgb(14), _raw(14, encoding="32FC1", step=WIDTH * 4, size=10))]
    _each_refused_then_answered(harness, node, bad, pair(_rgb(99), _depth(99)), latent, len(bad))
    assert not any(3001 <= m.header.stamp.sec <= 3014 for m in latent)


@pytest.mark.slow
@pytest.mark.ros
def test_live_decoder_counts_hostile_latents_and_answers_the_next(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode

    node = _live(harness, RgbdDecoderNode, exported["conv_vae"][0])
    image = harness.listen(Image, "decoded/image")
    pub = harness.publisher(CompressedImage, "latent")
    assert harness.send(pub, _latent(0), lambda: image)
    hostile = [_latent(1, dim=12), _latent(2, dim=17), _latent(3, mu=_mu(np.nan)), _latent(4, mu=_mu(np.inf, 2)),
               _latent(5, mu=_mu(3.4e38)), _latent(6, mu=_mu(-3.4e38)), _latent(7, model="ffffffffffff"),
               _coded(8, "jpeg", bytes(4 * LATENT_DIM)), _coded(9, _latent_format(), bytes(10)),
               _coded(10, _latent_format(codec="q8"), bytes(LATENT_DIM + 1))]
    bad = [lambda m=m: (pub.publish(m), _pause()) for m in hostile]
    _each_refused_then_answered(harness, node, bad, lambda: (pub.publish(_latent(99)), _pause()), image, len(bad))
    assert not any(3001 <= m.header.stamp.sec <= 3010 for m in image)


@pytest.mark.slow
@pytest.mark.ros
def test_live_pipeline_counts_hostile_input_and_answers_the_next(harness, pipeline_models):
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode

    node = _live(harness, RgbdPipelineNode, pipeline_models, use_depth=False)
    topics = {t: harness.listen(Image, t) for t in ("depth/image", "decoded/image", "decoded/depth")}
    topics["latent"] = harness.listen(CompressedImage, "latent")
    info = harness.listen(CameraInfo, "depth/camera_info")
    pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    assert harness.send(pub, _rgb(0), lambda: all(topics.values()))
    bad = [lambda m=m: (pub.publish(m), _pause()) for m in LIVE_IMAGE_FAULTS]
    _each_refused_then_answered(harness, node, bad, lambda: (pub.publish(_rgb(99)), _pause()), topics["decoded/depth"],
                                len(bad))
    assert all(_stamped(out, 3099) for out in topics.values())
    assert not any(3001 <= m.header.stamp.sec <= 3010 for out in topics.values() for m in out)
    # camera_info that cannot describe the image: counted, not republished; every image output still goes out
    for count, (i, bad_info) in enumerate([(20, _info(k=[0.0] * 9, i=20)), (21, _info(100, 100, i=21)),
                                           (22, _info(k=_k(k0=float("nan")), i=22))], start=1):
        assert harness.wait_for(lambda i=i, bad_info=bad_info, count=count: (
            info_pub.publish(bad_info), pub.publish(_rgb(i)), _pause(),
            node.processor.counts["camera_info_rejected"] >= count and _stamped(topics["latent"], 3000 + i))[-1])
    assert not info


# --- rgbd-vae bag process: hostile messages in a bag are counted, the good frames still processed ----
IMAGE_TYPE, INFO_TYPE = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"


def _bag_msg(msg):
    """A rosbags message of the same fields as an rclpy Image / CameraInfo."""
    from rgbd_vae_ros.bags import typestore

    store = typestore()
    Time, Header_ = store.types["builtin_interfaces/msg/Time"], store.types["std_msgs/msg/Header"]
    header = Header_(stamp=Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec),
                     frame_id=msg.header.frame_id)
    if isinstance(msg, CameraInfo):
        RoI = store.types["sensor_msgs/msg/RegionOfInterest"]
        return store.types[INFO_TYPE](header=header, height=msg.height, width=msg.width, distortion_model="plumb_bob",
                                      d=np.zeros(5), k=np.asarray(msg.k, np.float64), r=np.eye(3).ravel(),
                                      p=np.zeros(12), binning_x=0, binning_y=0,
                                      roi=RoI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    if isinstance(msg, CompressedImage):
        return store.types[COMPRESSED_TYPE](header=header, format=msg.format,
                                            data=np.frombuffer(bytes(msg.data), np.uint8))
    return store.types[IMAGE_TYPE](header=header, height=msg.height, width=msg.width, encoding=msg.encoding,
                                   is_bigendian=msg.is_bigendian, step=msg.step,
                                   data=np.frombuffer(bytes(msg.data), np.uint8))


def _bag(path, items):
    """items: (topic, msgtype, message or raw CDR bytes) in time order, one per stamp."""
    from rgbd_vae_ros.bags import write_bag

    with write_bag(path) as writer:
        for n, (topic, msgtype, message) in enumerate(items):
            recorded = 3_000_000_000_000 + n * 1_000_000
            if isinstance(message, bytes):
                writer.write_raw(topic, msgtype, recorded, message)
            else:
                writer.write(topic, msgtype, recorded, _bag_msg(message))
    return path


BAG_IMAGE_FAULTS = LIVE_IMAGE_FAULTS[:8]


@pytest.mark.parametrize("executable", ["depth_estimator", "rgbd_pipeline"])
def test_bag_process_counts_hostile_images_and_processes_the_good_frames(pipeline_models, tmp_path, executable):
    from rgbd_vae_ros.bags import RGB_TOPIC, BagReader
    from rgbd_vae_training.bag.process import process_bag

    items = []
    for i, bad in enumerate(BAG_IMAGE_FAULTS):
        items += [(RGB_TOPIC, IMAGE_TYPE, _rgb(40 + i)), (RGB_TOPIC, IMAGE_TYPE, bad)]
    items.append((RGB_TOPIC, IMAGE_TYPE, _rgb(99)))
    bag = _bag(tmp_path / "hostile", items)
    result = process_bag(bag, tmp_path / "out", pipeline_models, backend="onnxruntime", executable=executable)
    good = len(BAG_IMAGE_FAULTS) + 1
    assert (result.frames_in, result.frames_out, sum(result.rejected.values())) == (len(items), good,
                                                                                    len(BAG_IMAGE_FAULTS))
    assert any("unknown image encoding 'hsv8'" in reason or "encoding 'hsv8'" in reason for reason in result.rejected)
    with BagReader(tmp_path / "out") as reader:
        stamps = [m.header.stamp.sec for _, m in reader.decoded("/rgbd_vae/depth/image")]
    assert stamps == [3040 + i for i in range(len(BAG_IMAGE_FAULTS))] + [3099]


def test_bag_process_encoder_counts_hostile_depths_and_processes_the_good_frames(exported, tmp_path):
    from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_TOPIC, BagReader
    from rgbd_vae_training.bag.process import process_bag

    negative = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    negative[0, 0] = -3.0
    hostile_depths = [_depth(51, 48, 48), numpy_to_image(negative, "32FC1", _header(53)), _rgb(55),
                      _raw(57, encoding="32FC1", step=WIDTH * 4, size=9)]
    items = []
    for bad in hostile_depths:
        i = bad.header.stamp.sec - 3000
        items += [(DEPTH_TOPIC, IMAGE_TYPE, _depth(i - 1)), (RGB_TOPIC, IMAGE_TYPE, _rgb(i - 1)),
                  (DEPTH_TOPIC, IMAGE_TYPE, bad), (RGB_TOPIC, IMAGE_TYPE, _rgb(i))]
    bag = _bag(tmp_path / "hostile", items)
    result = process_bag(bag, tmp_path / "out", exported["conv_vae"][0], backend="onnxruntime",
                         executable="rgbd_encoder")
    assert (result.frames_in, result.frames_out, sum(result.rejected.values())) == (8, 4, 4), result.rejected
    with BagReader(tmp_path / "out") as reader:
        stamps = [m.header.stamp.sec for _, m in reader.decoded("/rgbd_vae/latent")]
    assert stamps == [3050, 3052, 3054, 3056]


def test_bag_process_decoder_counts_hostile_latents_and_processes_the_good_ones(exported, tmp_path):
    from rgbd_vae_ros.bags import BagReader
    from rgbd_vae_training.bag.process import process_bag

    hostile = [_latent(61, dim=12), _latent(63, mu=_mu(np.nan)), _latent(65, mu=_mu(3.4e38)),
               _coded(67, _latent_format(), bytes(5)), _latent(69, model="ffffffffffff")]
    items = []
    for bad in hostile:
        items += [("/rgbd_vae/latent", COMPRESSED_TYPE, _latent(bad.header.stamp.sec - 3001, codec="q4")),
                  ("/rgbd_vae/latent", COMPRESSED_TYPE, bad)]
    bag = _bag(tmp_path / "hostile", items)
    result = process_bag(bag, tmp_path / "out", exported["conv_vae"][0], backend="onnxruntime",
                         executable="rgbd_decoder")
    assert (result.frames_in, result.frames_out, sum(result.rejected.values())) == (10, 5, 5), result.rejected
    assert any("latent of model ffffffffffff" in reason for reason in result.rejected), result.rejected
    with BagReader(tmp_path / "out") as reader:
        stamps = [m.header.stamp.sec for _, m in reader.decoded("/rgbd_vae/decoded/image")]
    assert stamps == [3060, 3062, 3064, 3066, 3068]


def test_bag_process_counts_camera_info_it_cannot_use_and_republishes_only_the_good(pipeline_models, tmp_path):
    from rgbd_vae_ros.bags import RGB_INFO_TOPIC, RGB_TOPIC, BagReader
    from rgbd_vae_training.bag.process import process_bag

    infos = [_info(i=70), _info(k=[0.0] * 9, i=71), _info(100, 100, i=72), _info(k=_k(k4=-1.0), i=73),
             _info(WIDTH * 2, HEIGHT * 2, i=74)]
    items = []
    for info in infos:
        items += [(RGB_INFO_TOPIC, INFO_TYPE, info), (RGB_TOPIC, IMAGE_TYPE, _rgb(info.header.stamp.sec - 3000))]
    bag = _bag(tmp_path / "infos", items)
    result = process_bag(bag, tmp_path / "out", pipeline_models, backend="onnxruntime", executable="depth_estimator")
    assert (result.frames_in, result.frames_out) == (5, 5) and result.counts == {"camera_info_rejected": 3}
    with BagReader(tmp_path / "out") as reader:
        published = [m for _, m in reader.decoded("/rgbd_vae/depth/camera_info")]
    assert [m.header.stamp.sec for m in published] == [3070, 3074]
    assert all((m.width, m.height) == (WIDTH, HEIGHT) and m.k[0] > 0 for m in published)


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01\x00\x00", b"\x00\x01\x00\x00" + b"\xff" * 64],
                         ids=["empty", "cdr_header_only", "cdr_header_then_0xff"])
def test_bag_process_counts_undecodable_bytes_on_the_image_topic_and_processes_the_good_frames(
        pipeline_models, tmp_path, garbage):
    from rgbd_vae_ros.bags import RGB_TOPIC
    from rgbd_vae_training.bag.process import process_bag

    items = [(RGB_TOPIC, IMAGE_TYPE, _rgb(80)), (RGB_TOPIC, IMAGE_TYPE, garbage), (RGB_TOPIC, IMAGE_TYPE, _rgb(82))]
    bag = _bag(tmp_path / "garbage", items)
    result = process_bag(bag, tmp_path / "out", pipeline_models, backend="onnxruntime", executable="depth_estimator")
    assert (result.frames_in, result.frames_out, sum(result.rejected.values())) == (3, 2, 1)


def test_rgbd_vae_bag_process_reports_the_rejects_in_one_line(pipeline_models, tmp_path, capsys):
    from rgbd_vae_ros.bags import RGB_TOPIC
    from rgbd_vae_training.cli import main

    bag = _bag(tmp_path / "hostile", [(RGB_TOPIC, IMAGE_TYPE, _rgb(90)),
                                      (RGB_TOPIC, IMAGE_TYPE, _raw(91, encoding="hsv8")),
                                      (RGB_TOPIC, IMAGE_TYPE, _rgb(92))])
    code = main(["bag", "process", str(bag), str(tmp_path / "out"), "--model", str(pipeline_models), "--backend",
                 "onnxruntime", "--node", "depth_estimator"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "2 of 3 frames processed, 1 rejected (most often, 1x: " in out.out and "'hsv8'" in out.out
