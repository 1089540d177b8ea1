"""A third-party depth network run through its model card (SPEC §5.1, :mod:`rgbd_vae_ros.cards`).

    stage = open_carded("models/da2_small.onnx")     # None when no card lies beside it
    result = stage.estimate_carded(rgb_u8, measured_m=depth_m, fx_px=fx)
    result.depth_m      # metres at the image's size (NaN: no estimate), or None: no metric scale
    result.relative     # the model's relative map at the image's size (relative outputs)

Pre-processing follows the card (aspect kept: pad or crop); output pixels outside what the model
saw are NaN. A ``metric`` output is metres (scaled by f_camera / f_train when the card gives the
training focal length and a camera focal length is known); a ``relative_inverse`` or
``disparity`` output becomes metres through a per-frame robust fit in inverse depth to measured
depth (:mod:`rgbd_vae_ros.scale_fit`), else the card's fixed scale, else not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cards import (CardError, ModelCard, View, card_path, check_card_against_graph, check_card_against_info,
                    focal_ratio, load_card, preprocess)
from .inference import BackendError, resolve_model_file
from .scale_fit import InverseDepthFit, fit_inverse_depth

__all__ = ["CardedDepthStage", "CardedEstimate", "open_carded", "to_image_grid"]


@dataclass
class CardedEstimate:
    depth_m: np.ndarray | None  # (H, W) float32 metres, NaN: no estimate; None: no metric scale this frame
    relative: np.ndarray | None  # (H, W) float32, the model's own values (relative outputs only)
    fit: InverseDepthFit | None  # the frame's fit to measured depth, when one was tried
    scale_from: str  # 'model', 'model+focal', 'fit', 'card' or '' (no metres)


def open_carded(path: str | os.PathLike, backend: str = "auto", device: str = "auto", fp16: bool = False):
    """The carded stage of ``path`` (an ``.onnx`` or a folder holding ``depth.onnx``) when a card lies
    beside it and the file is not one of our exports; None otherwise. A card beside one of our
    exports must agree with its metadata."""
    try:
        file = resolve_model_file(path, "depth", "onnxruntime" if backend in ("auto", "tensorrt") else backend)
    except BackendError:
        return None  # not an ONNX file: the ordinary loader says what is wrong
    card_file = card_path(file)
    if file.suffix.lower() != ".onnx" or not card_file.is_file():
        return None
    stage = CardedDepthStage(file, load_card(card_file), device)
    if stage.own_info is not None:  # one of ours: its metadata drives it; the card must say the same
        try:
            check_card_against_info(stage.card, stage.own_info, repr(str(file)))
        finally:
            stage.close()
        return None
    if backend not in ("auto", "onnxruntime"):
        stage.close()
        raise BackendError(f"{str(file)!r} is a carded third-party model, which runs on ONNX Runtime; backend "
                           f"{backend!r} cannot run it (set backend to auto or onnxruntime)")
    return stage


def to_image_grid(values: np.ndarray, view: View, image_hw: tuple[int, int]) -> np.ndarray:
    """A model output (oh, ow) laid over the model input back onto the (h, w) image, bilinear; NaN
    where the image pixel lies outside what the model saw (cropped away)."""
    h, w = image_hw
    (oh, ow), (input_h, input_w) = values.shape, view.input_hw
    axes = []
    for n, scaled, offset, out, size in ((h, view.scaled_hw[0], view.offset[0], oh, input_h),
                                         (w, view.scaled_hw[1], view.offset[1], ow, input_w)):
        at_input = (np.arange(n) + 0.5) * (scaled / n) + offset  # pixel centres in input coordinates
        seen = (at_input >= 0) & (at_input < size)
        at_output = np.clip(at_input * (out / size) - 0.5, 0, out - 1)
        low = np.floor(at_output).astype(np.intp)
        high = np.minimum(low + 1, out - 1)
        axes.append((low, high, (at_output - low).astype(np.float32), seen))
    (r0, r1, fr, seen_r), (c0, c1, fc, seen_c) = axes
    top = values[r0][:, c0] * (1 - fc) + values[r0][:, c1] * fc
    bottom = values[r1][:, c0] * (1 - fc) + values[r1][:, c1] * fc
    out = (top * (1 - fr)[:, None] + bottom * fr[:, None]).astype(np.float32)
    out[~seen_r] = np.nan
    out[:, ~seen_c] = np.nan
    return out


def sample_at(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` (H, W) at the pixel centres of a same-aspect grid ``shape`` (nearest)."""
    (h, w), (rows, cols) = values.shape, shape
    r = np.minimum(((np.arange(rows) + 0.5) * h / rows).astype(np.intp), h - 1)
    c = np.minimum(((np.arange(cols) + 0.5) * w / cols).astype(np.intp), w - 1)
    return values[r][:, c]


class CardedDepthStage:
    """RGB uint8 (H, W, 3) -> the card's depth output at the input's size, on ONNX Runtime."""

    part = "depth"
    has_mask = False

    def __init__(self, path: str | os.PathLike, card: ModelCard, device: str = "auto"):
        from .inference.metadata import METADATA_KEY, ModelInfo
        from .inference.onnxruntime_backend import open_session

        self.path = Path(path)
        self.session = open_session(path, device)
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        self.own_info = None if text is None else ModelInfo.from_json(text, repr(str(path)))
        check_card_against_graph(card, self.session.get_inputs(), self.session.get_outputs(), repr(str(path)))
        self.card = card
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    @property
    def needs_measured_depth(self) -> bool:
        """Whether metres need measured depth (a relative output without a fixed scale in its card)."""
        return not self.card.is_metric and not self.card.fixed_scale

    def describe(self) -> dict[str, str]:
        return {"backend": "onnxruntime", "device": self.device, "precision": "fp32", "model": str(self.path),
                "model_name": self.card.name or self.path.stem, "checkpoint_sha256": "",
                "model_card": str(card_path(self.path)), "output_kind": self.card.output.kind}

    def close(self) -> None:
        self.session = None

    def run(self, rgb_u8: np.ndarray) -> tuple[np.ndarray, View]:
        """The model's output (oh, ow) for one image and where the image lay in its input."""
        from .stages import StageError, check_rgb

        check_rgb(rgb_u8)
        try:
            x, view = preprocess(rgb_u8, self.card)
        except CardError as exc:
            raise StageError(str(exc)) from None
        y = self.session.run([self.card.output.name], {self.card.input.name: x})[0]
        y = y[0, 0] if y.ndim == 4 else y[0]  # (oh, ow)
        if not np.isfinite(y).any():
            raise StageError("depth model output holds only NaN or infinite values for this image")
        return y.astype(np.float32, copy=False), view

    def estimate_carded(self, rgb_u8: np.ndarray, measured_m: np.ndarray | None = None,
                        fx_px: float | None = None) -> CardedEstimate:
        """Depth in metres (or None) and the relative map of one image. ``measured_m``: measured depth
        of the same frame (same aspect, any resolution, sparse allowed); ``fx_px``: the camera's focal
        length in pixels at the image's resolution."""
        y, view = self.run(rgb_u8)
        values = to_image_grid(y, view, rgb_u8.shape[:2])
        out = self.card.output
        if self.card.is_metric:
            with np.errstate(invalid="ignore"):
                depth_m = out.scale * values + out.shift
                scale_from = "model"
                if out.focal_length_px is not None and fx_px is not None:  # SPEC §4.2: at the model's input
                    try:
                        depth_m *= np.float32(focal_ratio(fx_px, view, out.focal_length_px))
                    except CardError as exc:
                        from .stages import StageError

                        raise StageError(str(exc)) from None
                    scale_from = "model+focal"
                depth_m[~(depth_m > 0)] = np.nan  # not a distance
            return CardedEstimate(depth_m.astype(np.float32), None, None, scale_from)
        fit = None
        if measured_m is not None:
            fit = fit_inverse_depth(sample_at(values, measured_m.shape), measured_m,
                                    with_shift=out.kind == "relative_inverse")
        if fit is not None and fit.ok:
            scale, shift, scale_from = fit.scale, fit.shift, "fit"
        elif out.scale is not None:
            scale, shift, scale_from = out.scale, out.shift, "card"
        else:
            return CardedEstimate(None, values, fit, "")
        with np.errstate(invalid="ignore", divide="ignore"):
            inverse = scale * values + shift
            depth_m = np.where(inverse > 0, 1.0 / inverse, np.nan).astype(np.float32)  # <= 0: beyond any depth
        return CardedEstimate(depth_m, values, fit, scale_from)

    def estimate(self, rgb_u8: np.ndarray):
        """As :meth:`DepthStage.estimate`: metres without measured depth or a camera (a metric card, or a
        fixed scale); a relative model without one cannot give metres."""
        from .stages import DepthEstimate, StageError

        result = self.estimate_carded(rgb_u8)
        if result.depth_m is None:
            raise StageError(f"{self.path.name} gives relative depth and this frame has no measured depth to fit its "
                             "scale to, and its card no fixed scale; only depth/relative can be published")
        return DepthEstimate(result.depth_m, None)

    def __call__(self, rgb_u8: np.ndarray) -> np.ndarray:
        return self.estimate(rgb_u8).depth_m
