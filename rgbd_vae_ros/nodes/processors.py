"""What each executable computes from one frame, without a node.

A processor owns its stages and turns a :class:`~rgbd_vae_ros.frames.Frame` into the messages the
executable publishes, as ``(relative topic, message)`` pairs with the input's header. The live
nodes publish them; ``rgbd-vae bag process`` writes them to a bag. Both therefore run the same
code on the same pairing (:mod:`rgbd_vae_ros.frames`), which is what lets tests check content
offline and deterministically.

Parameters come through ``param(name)`` (a node's parameter, or a plain dict offline) and are read
per frame, so a change applies to the next frame. ``wanted(topic)`` says whether an optional
output has a reader; outputs nobody reads are not computed.

The latent (SPEC §4.3) is a self-describing CompressedImage (:mod:`rgbd_vae_ros.latent`) in the
codec of ``latent_codec``; the encoder and the pipeline also have a *latched* output,
``latent/info`` (the quantiser table, once per model: :meth:`Processor.latched_messages`), and the
decoder a *side input*, ``latent/info`` (:meth:`Processor.side_input`). The decoder refuses a
latent of another model id or dim. For q8/q4 codes it uses the table of the latest ``latent/info``
of its own model id, and before one has arrived the table in its own model metadata (the encoder
and decoder of one export carry the same table); a model with neither refuses q codes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from rgbd_vae_ros.carded_depth import CardedDepthStage
from rgbd_vae_ros.conversion import (ImageConversionError, compressed_msg_to_rgb, depth_m_to_mm, depth_mm_to_m,
                                     depth_msg_to_m, image_msg_to_rgb, numpy_to_image, scale_camera_info)
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.latent import (LatentError, Quantiser, build_info_message, build_latent_message, model_id,
                                 parse_format, parse_info_message, parse_latent_message)
from rgbd_vae_ros.points import points_message
from rgbd_vae_ros.processing import colorize_depth
from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage, StageError, check_same_checkpoint

from .carded import RELATIVE_OUTPUT, carded_depth

Param = Callable[[str], Any]
Wanted = Callable[[str], bool]
Outputs = list[tuple[str, Any]]

# Message type of each input stream (the decoder's frame.image is a latent message); the colour
# image may also come compressed (image_transport compressed, on ``image/compressed``).
INPUT_TYPES = {"image": Image, "depth": Image, "camera_info": CameraInfo, "latent": CompressedImage}
COMPRESSED_IMAGE = ("image/compressed", CompressedImage)


def rgb_of(msg) -> np.ndarray:
    """The colour image of a sensor_msgs/Image or CompressedImage as (H, W, 3) uint8 RGB."""
    return compressed_msg_to_rgb(msg) if hasattr(msg, "format") else image_msg_to_rgb(msg)
DEPTH_OUTPUTS = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/colorized": Image,
                 "depth/points": PointCloud2}
ENCODE_OUTPUTS = {"latent": CompressedImage}
# Once per model, transient local (a late subscriber still gets it): the latent's quantiser table.
LATCHED_OUTPUTS = {"latent/info": CompressedImage}
LATENT_INFO = "latent/info"
Q_CODECS = ("q8", "q4")
DECODE_OUTPUTS = {"decoded/image": Image, "decoded/depth": Image}
# With each decoding, when the frame's camera_info is valid: that camera at the decoded size (the
# encoder resizes each axis to the model's input, so K scales per axis).
DECODED_INFO = {"decoded/camera_info": CameraInfo}
# A depth model with a validity mask also has this (mono8, 255 where the mask reaches mask_threshold).
MASK_OUTPUTS = {"depth/mask": Image}
# Outputs computed only while someone reads them. The pipeline decodes only while a decoded output
# is read, and encodes only while the latent or a decoded output is.
ON_DEMAND = {"depth/colorized", "depth/points", "depth/mask", "depth/relative", "latent", *DECODE_OUTPUTS}
# Left out of offline processing (rgbd-vae bag process): a cloud is ~5 MB per 640x480 frame and is
# rebuilt from depth/image + depth/camera_info by any consumer.
LIVE_ONLY = {"depth/points"}


def _open(stage_cls, param: Param):
    if not param("model"):
        raise ValueError("parameter 'model' is empty; set it to an exported model file or folder")
    return stage_cls.open(param("model"), param("backend"), param("device"), param("fp16"))


def with_depth_model_outputs(outputs: dict[str, type], stage: DepthStage) -> dict[str, type]:
    """``outputs`` plus what the depth model adds: ``depth/mask`` when it has a validity mask,
    ``depth/relative`` for a relative third-party model (SPEC §5.1)."""
    if isinstance(stage, CardedDepthStage) and not stage.card.is_metric:
        outputs = {**outputs, RELATIVE_OUTPUT: Image}
    return {**outputs, **MASK_OUTPUTS} if stage.has_mask else outputs


def quantiser_of(info) -> Quantiser | None:
    """The latent quantiser table in a model part's metadata, or None (a .pt checkpoint, an older export)."""
    table = info.latent_quantiser
    if table is None:
        return None
    try:
        return Quantiser.from_dict(table)
    except LatentError as exc:
        raise ValueError(f"model {info.model_name} carries a latent quantiser table that cannot be used: {exc}") from None


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


def camera_fx_px(frame: Frame, width: int, height: int) -> float | None:
    """The focal length in pixels at ``width`` x ``height`` of the frame's camera_info, for scaling
    metres by f_camera / f_train (SPEC §4.2); None without one or with one that cannot describe the
    image (the caller counts that)."""
    if frame.camera_info is None or camera_info_problem(frame.camera_info, width, height) is not None:
        return None
    return float(scale_camera_info(frame.camera_info, width, height).k[0])


class Processor:
    """Base: ``inputs`` are the streams a frame is made of, ``outputs`` topic -> message type."""

    inputs: tuple[str, ...] = ()
    outputs: dict[str, type] = {}
    latched: dict[str, type] = {}  # outputs published once per model, transient local
    side_inputs: dict[str, type] = {}  # inputs that are not frames (transient local), see side_input
    model_inputs: dict[str, str] = {}  # topic -> the models that add it (--help)
    model_outputs: dict[str, str] = {}

    def __init__(self, param: Param):
        self.param = param
        self.stages: list = []
        self.counts: Counter = Counter()  # what was refused or replaced, for /diagnostics
        self.reasons: dict[str, str] = {}  # the latest reason for each count
        self.mask_pixels = 0  # pixels a validity mask was applied to (the share masked is counted)
        self.decoded_pixels = 0  # decoded depth pixels (the share without depth is counted)

    def note(self, kind: str, reason: str) -> None:
        self.counts[kind] += 1
        self.reasons[kind] = reason

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        raise NotImplementedError

    def latched_messages(self, header) -> Outputs:
        """The latched outputs of the model now loaded (the node publishes them once per model)."""
        return []

    def side_input(self, topic: str, msg) -> None:
        """A message on a side input (not a frame)."""

    # the latent (SPEC §4.3) ------------------------------------------------------------------
    def open_latent(self, encoder: EncodeStage) -> None:
        """The encoder's model id and quantiser table; a q codec without a table cannot configure."""
        try:
            self.model_id = model_id(encoder.info.checkpoint_sha256)
        except LatentError as exc:
            raise ValueError(f"encoder {encoder.info.model_name}: {exc}") from None
        self.quantiser = quantiser_of(encoder.info)
        codec = self.param("latent_codec")
        if codec in Q_CODECS and self.quantiser is None:
            raise ValueError(f"latent_codec {codec} needs the latent quantiser table in the encoder's metadata and "
                             f"{encoder.describe()['model'] or encoder.info.model_name} has none (a .pt checkpoint "
                             "or an older export); export it again with rgbd-vae export, or set latent_codec to f32 "
                             "or f16")

    def latent_info(self, header) -> Outputs:
        if getattr(self, "quantiser", None) is None:
            return []  # a model without a table: nothing to describe, and only f32/f16 codes
        return [(LATENT_INFO, build_info_message(header, self.quantiser, self.model_id))]

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
            values.update({k: v for k, v in d.items() if k.startswith("depth_")})  # a depth model's geometry
        return values

    # the three jobs, shared by the single executables and the pipeline ------------------------
    def estimate_depth(self, stage: DepthStage, rgb_u8: np.ndarray, frame: Frame, wanted: Wanted,
                       out: Outputs) -> np.ndarray:
        header = frame.image.header
        if isinstance(stage, CardedDepthStage):  # a third-party model (SPEC §5.1): maybe no metres this frame
            depth_m, mask = carded_depth(self, stage, rgb_u8, frame, wanted, out), None
            if depth_m is None:
                return None
        else:
            # metres follow the camera (SPEC §4.2); a model without a training focal length keeps its own
            # scale, which /diagnostics says (depth_scaling)
            fx_px = camera_fx_px(frame, *rgb_u8.shape[1::-1]) if stage.focal_length_px is not None else None
            depth_m, mask, saturated = stage.estimate(rgb_u8, fx_px)
            if saturated:
                self.counts["depth_saturated_pixels"] += saturated
                self.reasons["depth_saturated_pixels"] = (
                    f"the model's output is at the top of its range ({stage.info.max_depth_m:g} m) at {saturated} "
                    "pixels of the latest such frame: it says only 'this far or farther', so they are no reading")
        with np.errstate(invalid="ignore"):  # outside [min_depth, max_depth] is no reading, never clamped (REP 118)
            depth_m[(depth_m < self.param("min_depth")) | (depth_m > self.param("max_depth"))] = np.nan
        if mask is not None:
            self.apply_mask(depth_m, mask, header, wanted, out)
        out.append(("depth/image", depth_image_msg(depth_m, self.param("depth_encoding"), header)))
        if frame.camera_info is not None:
            problem = camera_info_problem(frame.camera_info, depth_m.shape[1], depth_m.shape[0])
            if problem is None:
                info = scale_camera_info(frame.camera_info, depth_m.shape[1], depth_m.shape[0])
                info.header = header
                out.append(("depth/camera_info", info))
                if wanted("depth/points"):  # the points of the depth as published (16UC1: whole millimetres)
                    published = (depth_m if self.param("depth_encoding") == "32FC1"
                                 else depth_mm_to_m(depth_m_to_mm(depth_m)))
                    out.append(("depth/points", points_message(header, published, info)))
            else:
                self.note("camera_info_rejected", problem)
        if wanted("depth/colorized"):
            colour = colorize_depth(depth_m, self.param("max_depth"))
            out.append(("depth/colorized", numpy_to_image(colour, "rgb8", header)))
        return depth_m

    def apply_mask(self, depth_m: np.ndarray, mask: np.ndarray, header, wanted: Wanted, out: Outputs) -> None:
        """Where the validity mask is below ``mask_threshold`` the depth is no reading (NaN); the
        share of pixels masked since configure is counted (``mask_masked_share``)."""
        trusted = mask >= self.param("mask_threshold")
        masked = trusted.size - int(np.count_nonzero(trusted))
        depth_m[~trusted] = np.nan
        self.mask_pixels += trusted.size
        self.counts["mask_pixels_masked"] += masked
        self.counts["mask_masked_share"] = round(self.counts["mask_pixels_masked"] / self.mask_pixels, 4)
        if wanted("depth/mask"):
            out.append(("depth/mask", numpy_to_image(trusted.astype(np.uint8) * np.uint8(255), "mono8", header)))

    def drop_unmade_depth(self, depth_m: np.ndarray) -> None:
        """Decoded depth of 0 m or outside [min_depth, max_depth] is no reading (NaN), as the decoder already leaves
        it where the encoded frame had none; the share of decoded pixels without depth since configure
        is counted (``decoded_depth_none_share``)."""
        with np.errstate(invalid="ignore"):
            depth_m[(depth_m <= 0) | (depth_m < self.param("min_depth")) | (depth_m > self.param("max_depth"))] = np.nan
        self.decoded_pixels += depth_m.size
        self.counts["decoded_depth_none"] += int(np.count_nonzero(np.isnan(depth_m)))
        self.counts["decoded_depth_none_share"] = round(self.counts["decoded_depth_none"] / self.decoded_pixels, 4)

    def encode(self, stage: EncodeStage, rgb_u8: np.ndarray, depth_m: np.ndarray | None, depth: str, header,
               out: Outputs, wanted: Wanted = lambda topic: True) -> np.ndarray:
        """The latent of the frame (``depth``: measured | estimated | none, what depth_m is) in the
        codec of ``latent_codec`` (published only when ``wanted``); returns μ as a receiver decodes it."""
        mu, logvar = stage(rgb_u8, depth_m)
        if not stage.uses_depth:
            depth = "none"
        msg = build_latent_message(header, mu, codec=self.param("latent_codec"), depth=depth, model=self.model_id,
                                   quantiser=self.quantiser, logvar=logvar if self.param("latent_logvar") else None)
        if wanted("latent"):
            out.append(("latent", msg))
        return parse_latent_message(msg, self.quantiser)[1]

    def valid_camera_info(self, frame: Frame, image_hw: tuple[int, int] | None, note: bool = True):
        """The frame's camera_info when it can describe the image (``image_hw``; None: an image of its
        own size, as for a latent), else None; a refused one is counted when ``note``."""
        info = frame.camera_info
        if info is None:
            return None
        height, width = image_hw if image_hw is not None else (info.height, info.width)
        problem = camera_info_problem(info, width, height)
        if problem is not None:
            if note:
                self.note("camera_info_rejected", problem)
            return None
        return info

    def decode(self, stage: DecodeStage, mu: np.ndarray, header, out: Outputs,
               wanted: Wanted = lambda topic: True, camera_info=None) -> None:
        """``decoded/image`` and ``decoded/depth`` of μ, those that are ``wanted``; no decode when neither is.
        With them ``decoded/camera_info``: ``camera_info`` (checked by the caller) at the decoded size."""
        if not any(wanted(topic) for topic in DECODE_OUTPUTS):
            return
        width, height = self.param("output_width"), self.param("output_height")
        rgb_u8, depth_m = stage(mu, (height, width) if width and height else None)
        if wanted("decoded/image"):
            out.append(("decoded/image", numpy_to_image(rgb_u8, "rgb8", header)))
        if depth_m is not None and wanted("decoded/depth"):
            self.drop_unmade_depth(depth_m)
            out.append(("decoded/depth", numpy_to_image(depth_m, "32FC1", header)))
        if camera_info is not None:
            info = scale_camera_info(camera_info, rgb_u8.shape[1], rgb_u8.shape[0])
            info.header = header
            out.append(("decoded/camera_info", info))


# What a depth model adds to a node (--help): outputs and inputs that exist with some models only.
MODEL_OUTPUTS = {"depth/mask": "models with a validity mask", RELATIVE_OUTPUT: "relative third-party models"}
MODEL_INPUTS = {"depth": "relative third-party models: measured depth to fit metres to"}


class DepthEstimator(Processor):
    """RGB -> ``depth/image``, ``depth/camera_info``, ``depth/colorized``."""

    inputs = ("image", "camera_info")
    outputs = DEPTH_OUTPUTS
    model_inputs, model_outputs = MODEL_INPUTS, MODEL_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.depth = _open(DepthStage, param)
        self.stages = [self.depth]
        self.outputs = with_depth_model_outputs(self.outputs, self.depth)
        if RELATIVE_OUTPUT in self.outputs and param("use_depth"):  # a measured depth to fit metres to
            self.inputs = ("image", "depth", "camera_info")

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        self.estimate_depth(self.depth, rgb_of(frame.image), frame, wanted, out)
        return out


class Encoder(Processor):
    """RGB (+ depth for an RGB-D model) -> ``latent`` (and ``latent/info``, latched)."""

    inputs = ("image", "depth")  # image alone for an RGB model or use_depth false
    outputs = ENCODE_OUTPUTS
    latched = LATCHED_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.encoder = _open(EncodeStage, param)
        self.stages = [self.encoder]
        try:
            self.open_latent(self.encoder)
        except BaseException:
            self.close()
            raise
        self.inputs = ("image", "depth") if param("use_depth") and self.encoder.uses_depth else ("image",)

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        if not wanted("latent"):
            return out  # nobody reads the code: no encode
        rgb_u8 = rgb_of(frame.image)
        depth_m = measured_depth_m(frame.depth, rgb_u8) if frame.depth is not None else None
        self.encode(self.encoder, rgb_u8, depth_m, "none" if depth_m is None else "measured", frame.image.header,
                    out)
        return out

    def latched_messages(self, header) -> Outputs:
        return self.latent_info(header)


class Decoder(Processor):
    """``latent`` -> ``decoded/image`` (rgb8) and ``decoded/depth`` (32FC1 metres); with the camera's
    ``camera_info`` of the same stamp, ``decoded/camera_info``."""

    inputs = ("latent", "camera_info")
    outputs = {**DECODE_OUTPUTS, **DECODED_INFO}
    side_inputs = {LATENT_INFO: CompressedImage}

    def __init__(self, param: Param):
        super().__init__(param)
        self.decoder = _open(DecodeStage, param)
        self.stages = [self.decoder]
        try:
            self.model_id = model_id(self.decoder.info.checkpoint_sha256)
            self.own_quantiser = quantiser_of(self.decoder.info)
        except (LatentError, ValueError) as exc:
            self.close()
            raise ValueError(f"decoder {self.decoder.info.model_name}: {exc}") from None
        self.received_quantiser: Quantiser | None = None  # from latent/info of this model id

    def side_input(self, topic: str, msg) -> None:
        """``latent/info``: the table of this decoder's model is kept; any other is counted."""
        try:
            model, quantiser = parse_info_message(msg)
        except LatentError as exc:
            self.note("latent_info_rejected", str(exc))
            return
        if model != self.model_id or quantiser.dim != self.decoder.latent_dim:
            self.note("latent_info_rejected", f"latent/info of model {model} (dim {quantiser.dim}); this decoder is "
                                              f"model {self.model_id} (dim {self.decoder.latent_dim})")
            return
        self.received_quantiser = quantiser

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        fmt = parse_format(frame.image.format)
        if fmt.model != self.model_id:
            raise LatentError(f"latent of model {fmt.model}; this decoder is model {self.model_id}, and another "
                              "model's codes mean something else")
        if fmt.dim != self.decoder.latent_dim:
            raise LatentError(f"latent has dim {fmt.dim}; this decoder takes {self.decoder.latent_dim}")
        quantiser = self.received_quantiser or self.own_quantiser
        if fmt.codec in Q_CODECS and quantiser is None:
            raise LatentError(f"latent in codec {fmt.codec} and no quantiser table of model {self.model_id} yet "
                              "(no latent/info received, none in this decoder's metadata)")
        _, mu, _ = parse_latent_message(frame.image, quantiser)
        self.decode(self.decoder, mu, frame.image.header, out, wanted, self.valid_camera_info(frame, None))
        return out


class Pipeline(Processor):
    """RGB (+ measured depth) -> estimated depth -> latent -> decoded RGB-D, every output of the three.

    The measured depth paired with the image is encoded when the encoder takes depth; a measured
    depth that cannot be used is counted and the estimate is encoded instead.
    """

    inputs = ("image", "depth", "camera_info")
    outputs = {**DEPTH_OUTPUTS, **ENCODE_OUTPUTS, **DECODE_OUTPUTS, **DECODED_INFO}
    model_outputs = MODEL_OUTPUTS
    latched = LATCHED_OUTPUTS

    def __init__(self, param: Param):
        super().__init__(param)
        self.stages = [_open(DepthStage, param)]
        try:
            self.stages += [_open(EncodeStage, param), _open(DecodeStage, param)]
            check_same_checkpoint(*self.stages[1:])
            self.open_latent(self.stages[1])
        except BaseException:
            self.close()
            raise
        self.depth, self.encoder, self.decoder = self.stages
        self.outputs = with_depth_model_outputs(self.outputs, self.depth)
        if not param("use_depth"):
            self.inputs = ("image", "camera_info")

    def __call__(self, frame: Frame, wanted: Wanted = lambda topic: True) -> Outputs:
        out: Outputs = []
        header = frame.image.header
        rgb_u8 = rgb_of(frame.image)
        depth_m = self.estimate_depth(self.depth, rgb_u8, frame, wanted, out)
        if not (wanted("latent") or any(wanted(topic) for topic in DECODE_OUTPUTS)):
            return out  # nobody reads the code or its decoding: no encode
        if frame.depth is not None:
            try:
                measured_m = measured_depth_m(frame.depth, rgb_u8)
                mu = self.encode(self.encoder, rgb_u8, measured_m, "measured", header, out, wanted)
            except (ImageConversionError, StageError) as exc:
                self.note("measured_depth_unused", str(exc))
                if depth_m is None and self.encoder.uses_depth:
                    self.note("latent_skipped", "no depth to encode: the measured depth cannot be used and the depth "
                              "model gave no metres for this frame")
                    return out
                mu = self.encode(self.encoder, rgb_u8, depth_m, "estimated", header, out, wanted)
        elif depth_m is None and self.encoder.uses_depth:  # a relative model (SPEC §5.1) without a fit
            self.note("latent_skipped", "no depth to encode: the frame has no measured depth and the depth model "
                      "gave no metres for it")
            return out
        else:
            mu = self.encode(self.encoder, rgb_u8, depth_m, "estimated", header, out, wanted)
        # the code as sent: a receiver decodes the same (a camera_info the depth path refused is counted there)
        self.decode(self.decoder, mu, header, out, wanted, self.valid_camera_info(frame, rgb_u8.shape[:2], note=False))
        return out

    def latched_messages(self, header) -> Outputs:
        return self.latent_info(header)


PROCESSORS = {"depth_estimator": DepthEstimator, "rgbd_encoder": Encoder, "rgbd_decoder": Decoder,
              "rgbd_pipeline": Pipeline}
