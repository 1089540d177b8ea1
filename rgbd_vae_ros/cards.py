"""Model cards (SPEC §5.1): what a depth network exported by another project expects and returns,
so the nodes can run it. A card is YAML beside the ONNX file, ``<name>.card.yaml`` for
``<name>.onnx``; see docs/model_cards.md and the cards in config/model_cards/.

    card = load_card("da2_small.card.yaml")         # refuses unknown keys and impossible values
    check_card_against_graph(card, session.get_inputs(), session.get_outputs(), "da2_small.onnx")
    x, view = preprocess(rgb_u8, card)              # the input tensor and where the image lies in it

Pure numpy + PyYAML; no ROS, no ONNX Runtime (the graph is passed in).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .processing import resize_rgb

__all__ = ["CARD_FORMAT", "CardError", "CardInput", "CardOutput", "ModelCard", "View", "card_for_info", "card_path",
           "check_card_against_graph", "check_card_against_info", "focal_ratio", "load_card", "parse_card",
           "preprocess", "write_card"]

CARD_FORMAT = "rgbd_vae_ros.card.v1"
LAYOUTS = ("NCHW", "NHWC")
COLOUR_ORDERS = ("RGB", "BGR")
RESIZE_POLICIES = ("pad", "crop")  # both keep the aspect ratio: an image is never stretched
OUTPUT_KINDS = ("metric", "relative_inverse", "disparity")
# The largest side a card may ask for: a bigger input is a typo, and would allocate gigabytes.
MAX_SIDE = 8192


class CardError(ValueError):
    """A model card that cannot be used; one sentence naming the field, its value and what was expected."""


@dataclass(frozen=True)
class CardInput:
    name: str
    size: tuple[int, int] | int  # fixed (height, width); or the short side, with multiple_of
    multiple_of: int | None  # a graph of dynamic size: each side a multiple of this
    layout: str  # NCHW | NHWC
    colour_order: str  # RGB | BGR
    mean: tuple[float, float, float]  # on pixel values scaled to [0, 1], in the card's colour order
    std: tuple[float, float, float]
    resize: str  # pad | crop


@dataclass(frozen=True)
class CardOutput:
    name: str
    kind: str  # metric | relative_inverse | disparity
    scale: float | None  # metric: m = scale * y + shift; relative: 1/m = scale * y + shift
    shift: float | None
    focal_length_px: float | None  # metric only: of the training images at the model's input resolution


@dataclass(frozen=True)
class ModelCard:
    input: CardInput
    output: CardOutput
    name: str = ""
    source: str = ""  # where the ONNX comes from (free text, for people)

    @property
    def is_metric(self) -> bool:
        """Whether the output is metres as it comes (a metric model)."""
        return self.output.kind == "metric"

    @property
    def fixed_scale(self) -> bool:
        """Whether a relative output has metres without measured depth (the card gives its scale)."""
        return self.output.kind != "metric" and self.output.scale is not None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["input"]["size"] = list(self.input.size) if isinstance(self.input.size, tuple) else self.input.size
        for key in ("mean", "std"):
            values["input"][key] = list(values["input"][key])
        return {"format": CARD_FORMAT, **values}


def card_path(onnx_path: str | os.PathLike) -> Path:
    """Where the card of ``onnx_path`` lies: ``<name>.card.yaml`` beside ``<name>.onnx``."""
    path = Path(onnx_path)
    return path.with_name(path.stem + ".card.yaml")


# parsing ----------------------------------------------------------------------------------------
_TOP_KEYS = {"format", "name", "source", "input", "output"}
_INPUT_KEYS = {"name", "size", "multiple_of", "layout", "colour_order", "mean", "std", "resize"}
_OUTPUT_KEYS = {"name", "kind", "scale", "shift", "focal_length_px"}


def load_card(path: str | os.PathLike) -> ModelCard:
    """Read and check the card at ``path``."""
    import yaml

    source = repr(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"cannot read the model card {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CardError(f"model card {source} is not UTF-8 text") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise CardError(f"model card {source} is not valid YAML{line}") from None
    return parse_card(values, source)


def parse_card(values: Any, source: str = "model card") -> ModelCard:
    """A card from its YAML mapping; unknown keys, missing keys and impossible values are refused."""
    section = _mapping(values, "", _TOP_KEYS, source)
    if section.get("format") != CARD_FORMAT:
        raise CardError(f"{source} has format {section.get('format')!r}; expected {CARD_FORMAT!r}")
    for key in ("name", "source"):
        if not isinstance(section.get(key, ""), str):
            raise CardError(f"{source} has {key} {section[key]!r}; expected text")
    inp = _mapping(section.get("input"), "input", _INPUT_KEYS, source)
    out = _mapping(section.get("output"), "output", _OUTPUT_KEYS, source)
    return ModelCard(_parse_input(inp, source), _parse_output(out, source), section.get("name", ""),
                     section.get("source", ""))


def _mapping(value: Any, where: str, allowed: set[str], source: str) -> dict:
    label = f"section {where!r}" if where else "top level"
    if not isinstance(value, dict):
        raise CardError(f"{source} {label} is {type(value).__name__ if value is not None else 'missing'}; "
                        "expected a mapping")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise CardError(f"{source} {label} has unknown key {unknown[0]!r}; known keys are "
                        f"{', '.join(sorted(allowed))}")
    return value


def _field(values: dict, section: str, key: str, source: str, required: bool = True):
    if key not in values or values[key] is None:
        if required:
            raise CardError(f"{source} is missing {section}.{key}")
        return None
    return values[key]


def _choice(values: dict, section: str, key: str, choices: tuple[str, ...], source: str) -> str:
    value = _field(values, section, key, source)
    if value not in choices:
        raise CardError(f"{source} has {section}.{key} {value!r}; expected one of {', '.join(choices)}")
    return value


def _whole(value: Any, label: str, source: str, low: int = 1, high: int = MAX_SIDE) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CardError(f"{source} has {label} {value!r}; expected a whole number from {low} to {high}")
    return value


def _number(value: Any, label: str, source: str, positive: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise CardError(f"{source} has {label} {value!r}; expected a finite number{' > 0' if positive else ''}")
    return float(value)


def _parse_input(values: dict, source: str) -> CardInput:
    name = _field(values, "input", "name", source)
    if not isinstance(name, str) or not name:
        raise CardError(f"{source} has input.name {name!r}; expected the graph's input name")
    size = _field(values, "input", "size", source)
    multiple_of = _field(values, "input", "multiple_of", source, required=False)
    if multiple_of is None:
        if not isinstance(size, list) or len(size) != 2:
            raise CardError(f"{source} has input.size {size!r}; expected [height, width] (or one number, the short "
                            "side, with input.multiple_of for a graph of dynamic size)")
        size = (_whole(size[0], "input.size height", source), _whole(size[1], "input.size width", source))
    else:
        multiple_of = _whole(multiple_of, "input.multiple_of", source, high=1024)
        size = _whole(size, "input.size (the short side, with input.multiple_of)", source)
    mean, std = (_triple(_field(values, "input", key, source), f"input.{key}", source, key == "std")
                 for key in ("mean", "std"))
    return CardInput(name, size, multiple_of, _choice(values, "input", "layout", LAYOUTS, source),
                     _choice(values, "input", "colour_order", COLOUR_ORDERS, source), mean, std,
                     _choice(values, "input", "resize", RESIZE_POLICIES, source))


def _triple(value: Any, label: str, source: str, positive: bool) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise CardError(f"{source} has {label} {value!r}; expected three numbers, one per colour channel")
    return tuple(_number(v, label, source, positive) for v in value)


def _parse_output(values: dict, source: str) -> CardOutput:
    name = _field(values, "output", "name", source)
    if not isinstance(name, str) or not name:
        raise CardError(f"{source} has output.name {name!r}; expected the graph's output name")
    kind = _choice(values, "output", "kind", OUTPUT_KINDS, source)
    scale, shift, focal = (_field(values, "output", key, source, required=False)
                           for key in ("scale", "shift", "focal_length_px"))
    scale = None if scale is None else _number(scale, "output.scale", source, positive=True)
    shift = None if shift is None else _number(shift, "output.shift", source)
    focal = None if focal is None else _number(focal, "output.focal_length_px", source, positive=True)
    if kind == "metric":
        scale, shift = 1.0 if scale is None else scale, 0.0 if shift is None else shift
    else:
        if focal is not None:
            raise CardError(f"{source} has output.focal_length_px {focal:g} on a {kind} output; a training focal "
                            "length scales metric outputs only")
        if shift is not None and scale is None:
            raise CardError(f"{source} has output.shift {shift:g} without output.scale; a fixed scale needs both "
                            "(or neither, to fit them to measured depth)")
        if kind == "disparity" and shift not in (None, 0.0):
            raise CardError(f"{source} has output.shift {shift:g} on a disparity output; disparity is proportional "
                            "to inverse depth, so its shift is 0")
        if scale is not None and shift is None:
            shift = 0.0
    return CardOutput(name, kind, scale, shift, focal)


# the card against its graph (SPEC §4.5) ---------------------------------------------------------
def check_card_against_graph(card: ModelCard, graph_inputs, graph_outputs, source: str) -> None:
    """Names, ranks and fixed sizes: each disagreement is one sentence naming the card field and both
    values. ``graph_*`` are ONNX Runtime NodeArgs (``name``, ``shape``, ``type``)."""
    inputs = {arg.name: arg for arg in graph_inputs}
    outputs = {arg.name: arg for arg in graph_outputs}
    if card.input.name not in inputs:
        raise CardError(f"the card of {source} has input.name {card.input.name!r} but the graph's inputs are "
                        f"{', '.join(repr(n) for n in inputs)}")
    if card.output.name not in outputs:
        raise CardError(f"the card of {source} has output.name {card.output.name!r} but the graph's outputs are "
                        f"{', '.join(repr(n) for n in outputs)}")
    if len(inputs) != 1:
        raise CardError(f"{source} has {len(inputs)} inputs ({', '.join(inputs)}); a carded depth model takes one "
                        "image")
    arg = inputs[card.input.name]
    if arg.type != "tensor(float)":
        raise CardError(f"the card of {source} describes input {arg.name!r} as float32 pixels but the graph's is "
                        f"{arg.type}")
    shape = list(arg.shape)
    if len(shape) != 4:
        raise CardError(f"the card of {source} has input.layout {card.input.layout} (rank 4) but the graph's "
                        f"{arg.name!r} has rank {len(shape)} {_dims(shape)}")
    channel_axis, spatial = (1, shape[2:4]) if card.input.layout == "NCHW" else (3, shape[1:3])
    if isinstance(shape[channel_axis], int) and shape[channel_axis] != 3:
        raise CardError(f"the card of {source} has input.layout {card.input.layout} (3 colour channels on axis "
                        f"{channel_axis}) but the graph's {arg.name!r} is {_dims(shape)}")
    if card.input.multiple_of is None:
        want = list(card.input.size)
        if any(isinstance(got, int) and got != size for got, size in zip(spatial, want)):
            raise CardError(f"the card of {source} has input.size {want} but the graph's {arg.name!r} is "
                            f"{_dims(spatial)} (height, width)")
    else:
        fixed = [d for d in spatial if isinstance(d, int)]
        if fixed:
            raise CardError(f"the card of {source} has input.multiple_of {card.input.multiple_of} (a graph of "
                            f"dynamic size) but the graph's {arg.name!r} has a fixed {_dims(spatial)} (height, "
                            "width); set input.size to it instead")
    out = outputs[card.output.name]
    if out.type != "tensor(float)":
        raise CardError(f"the card of {source} describes output {out.name!r} as float32 depth but the graph's is "
                        f"{out.type}")
    out_shape = list(out.shape)
    if len(out_shape) not in (3, 4) or (len(out_shape) == 4 and isinstance(out_shape[1], int) and out_shape[1] != 1):
        raise CardError(f"the card of {source} has output.name {out.name!r}, read as one depth map (batch, H, W) or "
                        f"(batch, 1, H, W), but the graph's is {_dims(out_shape)}")


def _dims(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else str(d or "?") for d in shape) + ")"


# our own models: the card from the metadata, and their agreement ---------------------------------
def card_for_info(info) -> ModelCard:
    """The card of one of our exported depth parts (:class:`~rgbd_vae_ros.inference.ModelInfo`): RGB
    u8 / 127.5 - 1 is mean 0.5, std 0.5 on [0, 1]; the output in [-1, 1] is metres through
    ``m = max/2 * y + max/2``; resize and training focal length from its ``depth_geometry``."""
    height, width = info.image_size
    half = float(info.max_depth_m) / 2.0
    geometry = info.geometry  # what its training saw (SPEC §5): resize policy, f_train or "unknown"
    focal = None if isinstance(geometry["focal_length_px"], str) else float(geometry["focal_length_px"])
    return ModelCard(CardInput(info.inputs[0], (int(height), int(width)), None, "NCHW", "RGB", (0.5, 0.5, 0.5),
                               (0.5, 0.5, 0.5), geometry["resize"]),
                     CardOutput(info.outputs[0], "metric", half, half, focal),
                     name=f"{info.model_name} {info.part}",
                     source=f"rgbd-vae export (checkpoint {info.checkpoint_sha256[:12] or 'unknown'})")


def check_card_against_info(card: ModelCard, info, source: str) -> None:
    """A card beside one of our exports must say what its metadata says (names, size, normalisation,
    output scale, resize policy, training focal length)."""
    expected = card_for_info(info)
    pairs = (("input.name", card.input.name, expected.input.name), ("input.size", card.input.size, expected.input.size),
             ("input.multiple_of", card.input.multiple_of, None), ("input.layout", card.input.layout, "NCHW"),
             ("input.colour_order", card.input.colour_order, "RGB"), ("input.mean", card.input.mean, expected.input.mean),
             ("input.std", card.input.std, expected.input.std), ("output.name", card.output.name, expected.output.name),
             ("output.kind", card.output.kind, "metric"), ("output.scale", card.output.scale, expected.output.scale),
             ("output.shift", card.output.shift, expected.output.shift),
             ("input.resize", card.input.resize, expected.input.resize),
             ("output.focal_length_px", card.output.focal_length_px, expected.output.focal_length_px))
    for label, got, want in pairs:
        if got != want:
            raise CardError(f"the card of {source} has {label} {_show(got)} but the model's metadata makes it "
                            f"{_show(want)}")


def _show(value) -> str:
    return str(list(value)) if isinstance(value, tuple) else repr(value)


def write_card(path: str | os.PathLike, card: ModelCard) -> None:
    """The card as YAML at ``path`` (atomically)."""
    import yaml

    from .files import atomic_write_text

    text = yaml.safe_dump(card.to_dict(), sort_keys=False, default_flow_style=None)
    atomic_write_text(path, text)


# pre-processing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """Where the image lies in the model's input: the model input is ``input_hw``; the image,
    scaled by ``scale`` (model pixels per image pixel) to ``scaled_hw``, has its top-left corner at
    ``offset`` (row, col) of the input (negative when cropped)."""

    input_hw: tuple[int, int]
    scaled_hw: tuple[int, int]
    offset: tuple[int, int]
    scale: float


def plan_view(image_hw: tuple[int, int], card: ModelCard) -> View:
    """The input size and the image's place in it, aspect kept (pad: all of the image inside the
    input, the rest mean colour; crop: the input filled, the image's borders cut)."""
    h, w = image_hw
    pad = card.input.resize == "pad"
    if card.input.multiple_of is None:
        input_h, input_w = card.input.size
        scale = min(input_h / h, input_w / w) if pad else max(input_h / h, input_w / w)
        scaled = (max(1, round(h * scale)), max(1, round(w * scale)))
    else:
        m = card.input.multiple_of
        scale = card.input.size / min(h, w)  # the short side to the card's size
        scaled = (max(1, round(h * scale)), max(1, round(w * scale)))
        round_side = (lambda s: -(-s // m) * m) if pad else (lambda s: max(m, s // m * m))
        input_h, input_w = round_side(scaled[0]), round_side(scaled[1])
    if max(input_h, input_w) > MAX_SIDE:  # a cropped image's scaled size is never allocated (preprocess)
        raise CardError(f"a {w}x{h} image would need a {input_w}x{input_h} model input; the largest side is "
                        f"{MAX_SIDE}")
    offset = ((input_h - scaled[0]) // 2, (input_w - scaled[1]) // 2)
    return View((input_h, input_w), scaled, offset, scale)


def focal_ratio(fx_px: float, view: View, focal_length_px: float) -> float:
    """f_camera / f_train at the model's input resolution (SPEC §4.2): the camera's focal length
    ``fx_px`` at the image's size, scaled into the input, over the training focal length there.
    A focal length that is not a positive number would scale metres into nonsense: refused."""
    if not (np.isfinite(fx_px) and fx_px > 0):
        raise CardError(f"the camera focal length is {fx_px!r} px; expected a positive number")
    return fx_px * view.scale / focal_length_px


def preprocess(rgb_u8: np.ndarray, card: ModelCard) -> tuple[np.ndarray, View]:
    """The model input (1, 3, H, W) or (1, H, W, 3) float32 for an (h, w, 3) uint8 RGB image, and its view."""
    view = plan_view(rgb_u8.shape[:2], card)
    # only the image rows and columns that land in the input are resized (all of them unless cropped):
    # a crop of an image of extreme aspect would otherwise scale the whole image first
    (r0, r1, top, h), (c0, c1, left, w) = (_visible_span(*args) for args in zip(
        rgb_u8.shape[:2], view.scaled_hw, view.offset, view.input_hw))
    scaled = resize_rgb(rgb_u8[r0:r1, c0:c1], h, w)
    if card.input.colour_order == "BGR":
        scaled = scaled[..., ::-1]
    mean = np.asarray(card.input.mean, np.float32)
    std = np.asarray(card.input.std, np.float32)
    pixels = (scaled.astype(np.float32) * np.float32(1 / 255) - mean) / std  # (h', w', 3)
    canvas = np.zeros((*view.input_hw, 3), np.float32)  # padding is the mean colour: 0 once normalised
    input_h, input_w = view.input_hw
    rows = slice(max(top, 0), min(top + h, input_h))
    cols = slice(max(left, 0), min(left + w, input_w))
    canvas[rows, cols] = pixels[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    x = canvas.transpose(2, 0, 1) if card.input.layout == "NCHW" else canvas
    return np.ascontiguousarray(x[None]), view


def _visible_span(n: int, scaled: int, offset: int, size: int) -> tuple[int, int, int, int]:
    """Along one axis of ``n`` image pixels scaled to ``scaled`` and placed at ``offset`` of an input
    ``size`` long: the image pixels [start, stop) that reach the input, their scaled length and
    where it starts in the input (``(0, n, offset, scaled)`` when the whole image is in)."""
    step = scaled / n  # input pixels per image pixel
    start = max(0, math.floor(-offset / step)) if offset < 0 else 0
    stop = min(n, math.ceil((size - offset) / step))
    if (start, stop) == (0, n):
        return 0, n, offset, scaled
    return start, stop, offset + round(start * step), max(1, round((stop - start) * step))
