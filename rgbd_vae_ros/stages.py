"""Pipeline stages over numpy (no ROS): depth, encode, decode. Each wraps a backend and the one
shared pre/post-processing (:mod:`rgbd_vae_ros.processing`), so training, export and the nodes
see the same numbers.

    depth = DepthStage.open("models/depth.onnx")
    depth_m = depth(rgb_u8)                        # (H, W) metres at the input's size
    depth_m, mask, saturated = depth.estimate(rgb_u8)  # + mask (None without one), pixels at max depth
    depth_m = depth(rgb_u8, fx_px=fx)              # metres scaled by f_camera / f_train (SPEC §4.2)
    mu, logvar = EncodeStage.open("models")(rgb_u8, depth_m)
    rgb_u8, depth_m = DecodeStage.open("models")(mu, output_size=(480, 640))
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .carded_depth import to_image_grid
from .cards import CardError, card_for_info, focal_ratio, preprocess
from .inference import Backend, BackendError, open_backend
from .inference.metadata import UNKNOWN
from .processing import (decoded_planes, depth_from_unit_range, depth_to_unit_range, resize_depth, resize_rgb,
                         rgb_to_unit_range)

__all__ = ["DecodeStage", "DepthEstimate", "DepthStage", "EncodeStage", "StageError", "check_same_checkpoint"]


# Beyond this a latent is not an encoder's output: with a N(0, 1) prior it would be a 100-sigma event.
MAX_ABS_LATENT = 100.0


class StageError(ValueError):
    """An input a stage cannot use; one sentence naming what was wrong and what was expected."""


def check_rgb(rgb_u8: np.ndarray) -> None:
    if not isinstance(rgb_u8, np.ndarray) or rgb_u8.dtype != np.uint8 or rgb_u8.ndim != 3 or rgb_u8.shape[2] != 3:
        shape = getattr(rgb_u8, "shape", None)
        raise StageError(f"image has shape {shape} and type {getattr(rgb_u8, 'dtype', type(rgb_u8).__name__)}; "
                         "expected (H, W, 3) uint8 RGB")
    if rgb_u8.shape[0] == 0 or rgb_u8.shape[1] == 0:
        raise StageError(f"image is {rgb_u8.shape[1]}x{rgb_u8.shape[0]}; expected at least 1x1 pixels")


def check_depth(depth_m: np.ndarray) -> None:
    if not isinstance(depth_m, np.ndarray) or depth_m.ndim != 2 or depth_m.dtype.kind != "f" or 0 in depth_m.shape:
        raise StageError(f"depth has shape {getattr(depth_m, 'shape', None)}; expected a non-empty (H, W) float "
                         "image in metres")
    with np.errstate(invalid="ignore"):  # -inf is REP 118's "too close to measure": no reading, like NaN and +inf
        negative = np.count_nonzero((depth_m < 0) & np.isfinite(depth_m))
    if negative:
        raise StageError(f"depth holds {negative} negative values; expected metres >= 0 with NaN or ±inf for "
                         "no reading")


class _Stage:
    part = ""

    def __init__(self, backend: Backend):
        if backend.info.part != self.part:
            raise BackendError(f"{backend.info.model_name} {backend.info.part} model given where a {self.part} "
                               "model is needed")
        self.backend, self.info = backend, backend.info
        self.height, self.width = backend.info.image_size

    @classmethod
    def open(cls, path: str | os.PathLike, backend: str = "auto", device: str = "auto", fp16: bool = False):
        """The stage over ``path``: a model file, or a folder holding ``<part>.engine|.onnx|.pt``."""
        return cls(open_backend(path, cls.part, backend, device, fp16))

    def describe(self) -> dict[str, str]:
        b = self.backend
        return {"backend": b.name, "device": b.device, "precision": b.precision, "model": str(getattr(b, "path", "")),
                "model_name": self.info.model_name, "checkpoint_sha256": self.info.checkpoint_sha256}

    def close(self) -> None:
        self.backend.close()


class DepthEstimate(NamedTuple):
    depth_m: np.ndarray  # (H, W) float32 metres, NaN where there is no estimate; the mask not applied
    mask: np.ndarray | None  # (H, W) float32 in [0, 1]: how far the depth there is trusted; None: no mask output
    # model output pixels at the top of its range (max depth), left without an estimate: there the model
    # says only "this far or farther"
    saturated: int = 0


class DepthStage(_Stage):
    """RGB uint8 (H, W, 3) -> depth in metres (H, W), float32, at the input's size, the image's aspect
    kept (the metadata's ``depth_geometry``); for a model with a validity mask (:attr:`has_mask`),
    :meth:`estimate` also gives the mask."""

    part = "depth"

    @classmethod
    def open(cls, path: str | os.PathLike, backend: str = "auto", device: str = "auto", fp16: bool = False):
        """As :meth:`_Stage.open`; a third-party ONNX with a model card beside it (SPEC §5.1) opens as a
        :class:`~rgbd_vae_ros.carded_depth.CardedDepthStage`."""
        from .carded_depth import open_carded

        carded = open_carded(path, backend, device, fp16)
        return carded if carded is not None else super().open(path, backend, device, fp16)

    def __init__(self, backend: Backend):
        super().__init__(backend)
        self.card = card_for_info(self.info)  # its pre-processing: the metadata's resize, the aspect kept

    @property
    def has_mask(self) -> bool:
        """Whether the model has a validity mask output (metadata ``mask``)."""
        return self.info.mask_output is not None

    def describe(self) -> dict[str, str]:
        """As :meth:`_Stage.describe`, with what the model's training saw (SPEC §4.2), for /diagnostics."""
        geometry, focal = self.info.geometry, self.focal_length_px
        scaling = (f"f_camera / f_train, f_train {focal:g} px at the {self.width}x{self.height} input" if focal else
                   "none: the training focal length is unknown (an export of a checkpoint that predates it), so "
                   "depth is at the model's own scale whatever camera_info says")
        box = geometry["supervised"]
        region = ("[top, left, bottom, right] " + ", ".join(f"{v:g}" for v in box)) if isinstance(box, list) else box
        return {**super().describe(), "depth_scaling": scaling, "depth_supervised_region": region,
                "depth_resize": geometry["resize"]}

    @property
    def focal_length_px(self) -> float | None:
        """f_train: the training focal length in pixels at the model's input size (metadata), or None
        where it is unknown (an older export): then depth is the model's own scale."""
        focal = self.info.geometry["focal_length_px"]
        return None if focal == UNKNOWN else float(focal)

    def __call__(self, rgb_u8: np.ndarray, fx_px: float | None = None) -> np.ndarray:
        """The depth alone, as the model estimates it (a mask, if any, is not applied)."""
        return self.estimate(rgb_u8, fx_px).depth_m

    def estimate(self, rgb_u8: np.ndarray, fx_px: float | None = None) -> DepthEstimate:
        """The depth and, for a model with one, its validity mask, both at the input's size. The image
        keeps its aspect (cropped or padded to the model's input as its metadata says); pixels the
        model did not see, or saw where its training had no depth to learn from, or where its output is
        at the top of its range (max depth: "this far or farther", counted in ``saturated``), are NaN. ``fx_px``:
        the camera's focal length in pixels at the image's size; metres are then scaled by
        f_camera / f_train at the model's input (SPEC §4.2) when the model records f_train."""
        check_rgb(rgb_u8)
        x, view = preprocess(rgb_u8, self.card)  # (1, 3, h, w): u8 / 127.5 - 1, the image's aspect kept
        outputs = self.backend.run({self.info.inputs[0]: x})
        unit = outputs[self.info.outputs[0]][0, 0]  # (oh, ow)
        finite = np.isfinite(unit)
        if not finite.any():
            raise StageError("depth model output holds only NaN or infinite values for this image; "
                             "expected depth in [-1, 1]")
        depth_m = depth_from_unit_range(unit, self.info.max_depth_m)
        supervised = self._supervised(depth_m.shape)
        saturated = finite & (unit >= 1.0)  # max depth or beyond: a clamped value, not a depth
        depth_m[~finite | saturated | ~supervised] = np.nan  # no estimate there: never a clipped value
        depth_m = to_image_grid(depth_m, view, rgb_u8.shape[:2])  # NaN where the image lay outside the input
        if fx_px is not None and self.focal_length_px is not None:
            try:
                depth_m *= np.float32(focal_ratio(fx_px, view, self.focal_length_px))
            except CardError as exc:
                raise StageError(str(exc)) from None
        mask = None
        if self.has_mask:
            mask = to_image_grid(self._mask_probability(outputs[self.info.mask_output][0, 0]), view, rgb_u8.shape[:2])
            mask[np.isnan(mask)] = 0.0  # not seen: not trusted
        return DepthEstimate(depth_m, mask, int(np.count_nonzero(saturated & supervised)))

    def _supervised(self, shape: tuple[int, int]) -> np.ndarray:
        """(oh, ow) bool: output pixels inside the region the model's training supervised (metadata)."""
        box = self.info.geometry["supervised"]
        inside = np.ones(shape, bool)
        if isinstance(box, list):
            top, left, bottom, right = box
            rows = (np.arange(shape[0]) + 0.5) / shape[0]  # pixel centres in fractions of the input
            cols = (np.arange(shape[1]) + 0.5) / shape[1]
            inside &= ((rows >= top) & (rows < bottom))[:, None] & ((cols >= left) & (cols < right))[None, :]
        return inside

    def _mask_probability(self, values: np.ndarray) -> np.ndarray:
        """The mask output as a probability; a pixel whose mask is not finite is not trusted."""
        values = values.astype(np.float32)
        if self.info.mask["kind"] == "logits":
            with np.errstate(invalid="ignore"):
                values = 0.5 * (1.0 + np.tanh(0.5 * values))  # the sigmoid, without overflow
        return np.where(np.isfinite(values), values, np.float32(0.0)).astype(np.float32)


class EncodeStage(_Stage):
    """RGB (+ depth for an 'rgbd' model) -> (mu, logvar), each (latent_dim,) float32."""

    part = "encoder"

    @property
    def uses_depth(self) -> bool:
        return self.info.mode == "rgbd"

    @property
    def latent_dim(self) -> int:
        return int(self.info.latent_dim)

    def __call__(self, rgb_u8: np.ndarray, depth_m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        check_rgb(rgb_u8)
        planes = [rgb_to_unit_range(resize_rgb(rgb_u8, self.height, self.width))]  # (h, w, 3)
        if self.uses_depth:
            if depth_m is None:
                raise StageError("this encoder takes RGB-D; a depth image is needed with each RGB image")
            check_depth(depth_m)
            unit, _ = depth_to_unit_range(resize_depth(depth_m, self.height, self.width), self.info.max_depth_m)
            planes.append(unit[..., None])
        x = np.concatenate(planes, axis=-1).transpose(2, 0, 1)[None]  # (1, C, h, w)
        out = self.backend.run({self.info.inputs[0]: np.ascontiguousarray(x)})
        mu, logvar = (out[name][0].astype(np.float32) for name in self.info.outputs)  # (latent_dim,) each
        if not (np.isfinite(mu).all() and np.isfinite(logvar).all()):
            raise StageError("encoder output holds NaN or infinite values for this image; expected a finite latent")
        return mu, logvar


class DecodeStage(_Stage):
    """Latent mu (latent_dim,) -> RGB uint8 (h, w, 3) and, for an RGB-D model, depth in metres (h, w),
    NaN where the decoded validity says the encoded frame had no reading: at the model's resolution,
    or at ``output_size`` (height, width)."""

    part = "decoder"

    @property
    def latent_dim(self) -> int:
        return int(self.info.latent_dim)

    def __call__(self, mu: np.ndarray, output_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        mu = np.asarray(mu)
        if mu.ndim != 1 or mu.shape[0] != self.latent_dim or mu.dtype.kind != "f":
            raise StageError(f"latent has shape {mu.shape}; this decoder takes {self.latent_dim} floats")
        if not np.isfinite(mu).all():
            raise StageError("latent holds NaN or infinite values")
        largest = float(np.abs(mu).max())
        if largest > MAX_ABS_LATENT:
            raise StageError(f"latent holds a value of magnitude {largest:.3g}; an encoder's mean lies within a few "
                             f"units of 0 (the prior is N(0, 1)), so a code beyond {MAX_ABS_LATENT:g} is not one and "
                             "its decoding would be saturated nonsense")
        if output_size is not None and min(output_size) < 1:
            raise StageError(f"output size {tuple(output_size)} is not a positive (height, width)")
        out = self.backend.run({self.info.inputs[0]: mu.astype(np.float32)[None]})
        recon = out[self.info.outputs[0]][0]  # (C, h, w)
        if not np.isfinite(recon).all():
            raise StageError("decoder output holds NaN or infinite values for this latent; expected a latent in "
                             "the range the encoder produces")
        rgb_u8, depth_m, _ = decoded_planes(recon, self.info.max_depth_m)  # depth NaN where the frame had none
        if output_size is not None and tuple(output_size) != rgb_u8.shape[:2]:
            height, width = output_size
            rgb_u8 = resize_rgb(rgb_u8, height, width)
            depth_m = None if depth_m is None else resize_depth(depth_m, height, width)
        return rgb_u8, depth_m


def check_same_checkpoint(encoder: EncodeStage, decoder: DecodeStage) -> None:
    """Refuse an encoder and a decoder that come from different checkpoints (SPEC §4.5): their latents
    would not mean the same thing. Compares the checkpoint hash each part records."""
    files = [repr(str(getattr(stage.backend, "path", stage.info.model_name))) for stage in (encoder, decoder)]
    hashes = [stage.info.checkpoint_sha256 for stage in (encoder, decoder)]
    if not all(hashes):
        missing = files[0] if not hashes[0] else files[1]
        raise BackendError(f"{missing} records no checkpoint hash, so the encoder {files[0]} and the decoder "
                           f"{files[1]} cannot be matched; export both from one checkpoint with rgbd-vae export")
    if hashes[0] != hashes[1]:
        raise BackendError(f"the encoder {files[0]} (checkpoint {hashes[0][:12]}) and the decoder {files[1]} "
                           f"(checkpoint {hashes[1][:12]}) come from different checkpoints; use the parts of one "
                           "export")
