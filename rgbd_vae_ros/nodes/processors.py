"""What each executable computes from one frame, without a node.

A processor owns its stages and turns a :class:`~rgbd_vae_ros.frames.Frame` into the messages the
executable publishes, as ``(relative topic, message)`` pairs with the input's header. The live
nodes publish them; ``rgbd-vae bag process`` writes them to a bag. Both therefore run the same
code on the same pairing (:mod:`rgbd_vae_ros.frames`), which is what lets tests check content
offline and deterministically.

Parameters come through ``param(name)`` (a node's parameter, or a plain dict offline) and are read
per frame, so a change applies to the next frame. ``wanted(topic)`` says whether an optional
output has a reader; outputs nobody reads are not computed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from rgbd_vae_ros.conversion import (ImageConversionError, compressed_msg_to_rgb, depth_m_to_mm, depth_msg_to_m,
                                     image_msg_to_rgb, latent_from_msg, latent_to_msg, numpy_to_image,
                                     scale_camera_info)
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.processing import colorize_depth
from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage, StageError, check_same_checkpoint

Param = Callable[[str], Any]
Wanted = Callable[[str], bool]
Outputs = list[tuple[str, Any]]

# Message type of each input stream (the decoder's frame.image is a latent message); the colour
# image may also come compressed (image_transport compressed, on ``image/compressed``).
INPUT_TYPES = {"image": Image, "depth": Image, "camera_info": CameraInfo, "latent": Image}
COMPRESSED_IMAGE = ("image/compressed", CompressedImage)


def rgb_of(msg) -> np.ndarray:
    """The colour image of a sensor_msgs/Image or CompressedImage as (H, W, 3) uint8 RGB."""
    return compressed_msg_to_rgb(msg) if hasattr(msg, "format") else image_msg_to_rgb(msg)
DEPTH_OUTPUTS = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/colorized": Image}
ENCODE_OUTPUTS = {"latent": Image}
DECODE_OUTPUTS = {"decoded/image": Image, "decoded/depth": Image}
# Outputs computed only while someone reads them.
ON_DEMAND = {"depth/colorized"}


def _open(stage_cls, param: Param):
    if not param("model"):
        raise ValueError("parameter 'model' is empty; set it to an exported model file or folder")
    return stage_cls.open(param("model"), param("backend"), param("device"), param("fp16"))


def depth_image_msg(depth_m: np.ndarray, encoding: str, header) -> Image:
    """REP 118 depth: 32FC1 metres with NaN for invalid, or 16UC1 millimetres with 0."""
    if encoding == "16UC1":
        return numpy_to_image(depth_m_to_mm(depth_m), "16UC1", header)
    return numpy_to_image(depth_m.astype(np.float32, copy=False), "32FC1", header)


def same_aspect(width_a: int, height_a: int, width_b: int, height_b: int) -> bool:
    """Whether two image sizes have one aspect ratio (to about a pixel)."""
    return abs(width_a * height_b - height_a * width_b) <= max(width_a, width_b)


def measured_depth_m(depth_msg, rgb_u8: np.ndarray) -> np.ndarray:
    """A measured depth image in metres, refused when its aspect is not the colour image's (it would
    be stretched onto other pixels)."""
    depth_m = depth_msg_to_m(depth_msg)
    (height, width), (rgb_height, rgb_width) = depth_m.shape, rgb_u8.shape[:2]
    if not same_aspect(width, height, rgb_width, rgb_height):
        raise StageError(f"depth is {width}x{height} and the image {rgb_width}x{rgb_height}: another aspect, "
                         "so its pixels are not the image's; expected a depth registered to the colour camera")
    return depth_m


def camera_info_problem(info, width: int, height: int) -> str | None:
    """Why ``info`` cannot describe an image of ``width`` x ``height``, or None when it can."""
    k = np.asarray(info.k, dtype=np.float64)
    if info.width <= 0 or info.height <= 0:
        return f"camera_info is {info.width}x{info.height}; expected a calibrated size"
    if k.shape != (9,) or not np.isfinite(k).all() or k[0] <= 0 or k[4] <= 0:
        return "camera_info K is not finite with fx, fy > 0"
    if not same_aspect(info.width, info.height, width, height):
        return (f"camera_info is {info.width}x{info.height}, another aspect than the {width}x{height} image; "
                "expected the image's size or the same aspect")
    return None


class Processor:
    """Base: ``inputs`` are the streams a frame is made of, ``outputs`` topic -> message type."""

    inputs: tuple[str, ...] = ()
    outputs: dict[str, type] = {}

    def __init__(self, param: Param):
        self.param = param
        self.stages: list = []
        self.counts: Counter = Counter()  # what was refused or replaced, for /diagnostics
        self.reasons: dict[str, str] = {}  # the latest reason for each count

    def note(self, kind: str, reason: str) -> None:
        self.counts[kind] += 1
        self.reasons[kind] = reason

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        raise NotImplementedError

    def close(self) -> None:
        for stage in self.stages:
            stage.close()
        self.stages = []

    def describe(self) -> dict[str, str]:
        """Backend, device and every model file and checkpoint hash in use."""
        described = [stage.describe() for stage in self.stages]
        values = {"backend": ", ".join(sorted({d["backend"] for d in described})),
                  "device": ", ".join(sorted({d["device"] for d in described}))}
        for stage, d in zip(self.stages, described):
            values[f"model_{stage.part}"] = d["model"]
            values[f"checkpoint_sha256_{stage.part}"] = d["checkpoint_sha256"]
        return values

    # the three jobs, shared by the single executables and the pipeline ------------------------
    def estimate_depth(self, stage: DepthStage, rgb_u8: np.ndarray, frame: Frame, wanted: Wanted,
                       out: Outputs) -> np.ndarray:
        header = frame.image.header
        depth_m = stage(rgb_u8)
        with np.errstate(invalid="ignore"):  # outside [min_depth, max_depth] is no reading, never clamped (REP 118)
            depth_m[(depth_m < self.param("min_depth")) | (depth_m > self.param("max_depth"))] = np.nan
        out.append(("depth/image", depth_image_msg(depth_m, self.param("depth_encoding"), header)))
        if frame.camera_info is not None:
            problem = camera_info_problem(frame.camera_info, depth_m.shape[1], depth_m.shape[0])
            if problem is None:
                info = scale_camera_info(frame.camera_info, depth_m.shape[1], depth_m.shape[0])
                info.header = header
                out.append(("depth/camera_info", info))
            else:
                self.note("camera_info_rejected", problem)
        if wanted("depth/colorized"):
            colour = colorize_depth(depth_m, self.param("max_depth"))
            out.append(("depth/colorized", numpy_to_image(colour, "rgb8", header)))
        return depth_m

    def encode(self, stage: EncodeStage, rgb_u8: np.ndarray, depth_m: np.ndarray | None, header,
               out: Outputs) -> np.ndarray:
        mu, logvar = stage(rgb_u8, depth_m)
        out.append(("latent", latent_to_msg(mu, logvar, header)))
        return mu

    def decode(self, stage: DecodeStage, mu: np.ndarray, header, out: Outputs) -> None:
        width, height = self.param("output_width"), self.param("output_height")
        rgb_u8, depth_m = stage(mu, (height, width) if width and height else None)
        out.append(("decoded/image", numpy_to_image(rgb_u8, "rgb8", header)))
        if depth_m is not None:
            out.append(("decoded/depth", numpy_to_image(depth_m, "32FC1", header)))


class DepthEstimator(Processor):
    """RGB -> ``depth/image``, ``depth/camera_info``, ``depth/colorized``."""

    inputs = ("image", "camera_info")
    outputs = DEPTH_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.depth = _open(DepthStage, param)
        self.stages = [self.depth]

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        self.estimate_depth(self.depth, rgb_of(frame.image), frame, wanted, out)
        return out


class Encoder(Processor):
    """RGB (+ depth for an RGB-D model) -> ``latent``."""

    inputs = ("image", "depth")  # image alone for an RGB model or use_depth false
    outputs = ENCODE_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.encoder = _open(EncodeStage, param)
        self.stages = [self.encoder]
        self.inputs = ("image", "depth") if param("use_depth") and self.encoder.uses_depth else ("image",)

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        rgb_u8 = rgb_of(frame.image)
        depth_m = measured_depth_m(frame.depth, rgb_u8) if frame.depth is not None else None
        self.encode(self.encoder, rgb_u8, depth_m, frame.image.header, out)
        return out


class Decoder(Processor):
    """``latent`` -> ``decoded/image`` (rgb8) and ``decoded/depth`` (32FC1 metres)."""

    inputs = ("latent",)
    outputs = DECODE_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.decoder = _open(DecodeStage, param)
        self.stages = [self.decoder]

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        mu, _ = latent_from_msg(frame.image, self.decoder.latent_dim)
        self.decode(self.decoder, mu, frame.image.header, out)
        return out


class Pipeline(Processor):
    """RGB (+ measured depth) -> estimated depth -> latent -> decoded RGB-D, every output of the three.

    The measured depth paired with the image is encoded when the encoder takes depth; a measured
    depth that cannot be used is counted and the estimate is encoded instead.
    """

    inputs = ("image", "depth", "camera_info")
    outputs = {**DEPTH_OUTPUTS, **ENCODE_OUTPUTS, **DECODE_OUTPUTS}

    def __init__(self, param: Param):
        super().__init__(param)
        self.stages = [_open(DepthStage, param)]
        try:
            self.stages += [_open(EncodeStage, param), _open(DecodeStage, param)]
            check_same_checkpoint(*self.stages[1:])
        except BaseException:
            self.close()
            raise
        self.depth, self.encoder, self.decoder = self.stages
        if not param("use_depth"):
            self.inputs = ("image", "camera_info")

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        header = frame.image.header
        rgb_u8 = rgb_of(frame.image)
        depth_m = self.estimate_depth(self.depth, rgb_u8, frame, wanted, out)
        if frame.depth is not None:
            try:
                measured_m = measured_depth_m(frame.depth, rgb_u8)
                mu = self.encode(self.encoder, rgb_u8, measured_m, header, out)
            except (ImageConversionError, StageError) as exc:
                self.note("measured_depth_unused", str(exc))
                mu = self.encode(self.encoder, rgb_u8, depth_m, header, out)
        else:
            mu = self.encode(self.encoder, rgb_u8, depth_m, header, out)
        self.decode(self.decoder, mu, header, out)
        return out


PROCESSORS = {"depth_estimator": DepthEstimator, "rgbd_encoder": Encoder, "rgbd_decoder": Decoder,
              "rgbd_pipeline": Pipeline}
