"""What travels with every deployable model file, so a node needs only the file: model name and
config, the part, input/output names, sizes, the normalisation and the checkpoint's hash. ONNX
files carry it in ``metadata_props``; TensorRT engines in a JSON file beside them."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import BackendError

METADATA_KEY = "rgbd_vae_ros"
METADATA_FORMAT = "rgbd_vae_ros.model.v1"
# The normalisation of rgbd_vae_ros.processing: RGB u8 -> u8 / 127.5 - 1; depth m -> 2 m / max - 1
# (clipped, invalid -> -1); every model output in [-1, 1] maps back the same way.
NORMALISATION = "unit_range_v1"
# mode -> (input channels, output channels): rgbd_vae_ros.models.base.MODES, read here without torch
MODE_CHANNELS = {"rgbd": (4, 5), "rgb": (3, 3), "rgb2rgbd": (3, 5)}
KINDS = {"vae": ("encoder", "decoder", "depth"), "depth": ("depth",)}  # kind -> its parts
OUTPUT_COUNT = {"encoder": 2, "decoder": 1, "depth": 1}  # encoder: mu, logvar; depth: + 1 with a mask
# What a depth part's validity mask output holds: 'probability' in [0, 1] (sigmoid in the graph, what
# export writes) or 'logits' (> 0: trusted); either way larger means the depth there is trusted.
MASK_KINDS = ("probability", "logits")
# A depth part's geometry (SPEC §4.2, §5): what its training saw, so the stage keeps the camera's
# aspect, invalidates what was never supervised and scales metres by f_camera / f_train.
UNKNOWN = "unknown"  # a checkpoint trained before this was recorded: the model's own input, no scaling
RESIZE_POLICIES = ("crop", "pad")  # how an image of another aspect meets the input; never stretched


@dataclass
class ModelInfo:
    model_name: str
    kind: str  # 'vae' | 'depth'
    part: str  # 'encoder' | 'decoder' | 'depth'
    config: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    input_shape: list[int]  # one sample: (C, H, W), or (latent_dim,) for a decoder
    max_depth_m: float = 10.0
    checkpoint_sha256: str = ""
    normalisation: str = NORMALISATION
    format: str = METADATA_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. engine build details
    # VAE parts: the per-dimension range of the latent's uniform codes (SPEC §4.3), fit at export:
    # {"lo": [...], "hi": [...], "fit_on": "what it was fit on", "frames": N}; None in older exports
    latent_quantiser: dict[str, Any] | None = None
    # depth parts of models with a validity mask (mff_depth): {"output": <its name, the second output>,
    # "kind": "probability" | "logits"}, an output of shape (1, H, W) like the depth; None: no mask
    mask: dict[str, Any] | None = None
    # depth parts: {"focal_length_px": f_train in pixels at the input size, or "unknown";
    # "supervised": "full", [top, left, bottom, right] fractions of the input, or "unknown";
    # "resize": "crop" | "pad"; "trained_on": text}; None in older exports (read as unknown)
    depth_geometry: dict[str, Any] | None = None

    @property
    def geometry(self) -> dict[str, Any]:
        """The depth part's geometry, with "unknown" for what an older export does not record."""
        values = dict(self.depth_geometry or {})
        return {"focal_length_px": values.get("focal_length_px", UNKNOWN),
                "supervised": values.get("supervised", UNKNOWN), "resize": values.get("resize", "crop"),
                "trained_on": values.get("trained_on", UNKNOWN)}

    @property
    def mask_output(self) -> str | None:
        """The name of the validity mask output, or None for a model without one."""
        return self.mask["output"] if self.mask else None

    @property
    def latent_dim(self) -> int | None:
        return self.config.get("latent_dim") if self.kind == "vae" else None

    @property
    def mode(self) -> str | None:
        return self.config.get("mode") if self.kind == "vae" else None

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes or makes."""
        c = self.config
        if self.kind == "depth":
            return c["input_height"], c["input_width"]
        return c["image_size"], c["image_size"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelInfo:
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise BackendError(f"{source} carries model metadata that is not JSON") from None
        if not isinstance(values, dict) or values.get("format") != METADATA_FORMAT:
            raise BackendError(f"{source} carries metadata of another format than {METADATA_FORMAT!r}")
        try:
            info = cls(**values)
        except TypeError as exc:
            raise BackendError(f"{source} carries incomplete model metadata ({exc})") from None
        info.check(source)
        return info

    def check(self, source: str) -> None:
        """Refuse values no model can have (SPEC §4.5): unknown kind, part, mode or normalisation, a
        size or latent that is not a positive integer, a max depth that is not a positive finite
        number, an input shape that disagrees with the config."""
        if self.normalisation != NORMALISATION:
            raise BackendError(f"{source} expects normalisation {self.normalisation!r}; this build has "
                               f"{NORMALISATION!r}")
        if not isinstance(self.model_name, str) or not self.model_name:
            raise BackendError(f"{source} carries metadata with model_name {self.model_name!r}; expected a model name")
        if not isinstance(self.kind, str) or self.kind not in KINDS or self.part not in KINDS[self.kind]:
            raise BackendError(f"{source} carries metadata for a {self.kind!r} model's {self.part!r} part; expected a "
                               "vae encoder, decoder or depth part, or a depth model's depth part")
        if not isinstance(self.config, dict):
            raise BackendError(f"{source} carries a model config that is a {type(self.config).__name__}; "
                               "expected a mapping")
        if self.mask is not None:
            mask_ok = (isinstance(self.mask, dict) and self.part == "depth" and self.mask.get("kind") in MASK_KINDS
                       and isinstance(self.mask.get("output"), str) and isinstance(self.outputs, list)
                       and self.outputs[1:2] == [self.mask["output"]])
            if not mask_ok:
                raise BackendError(f"{source} carries mask metadata {self.mask!r}; expected, on a depth part, "
                                   "{'output': <the name of its second output>, 'kind': "
                                   f"{' or '.join(repr(k) for k in MASK_KINDS)}}}")
        if self.depth_geometry is not None:
            check_depth_geometry(self.depth_geometry, self.part, source)
        outputs = OUTPUT_COUNT[self.part] + (self.mask is not None)
        counts = (("inputs", self.inputs, 1), ("outputs", self.outputs, outputs))
        for field_name, names, count in counts:
            if (not isinstance(names, list) or len(names) != count
                    or not all(isinstance(n, str) and n for n in names)):
                raise BackendError(f"{source} carries metadata {field_name} {names!r}; a {self.part} part has "
                                   f"{count} named {field_name}")
        max_depth = self.max_depth_m
        if isinstance(max_depth, bool) or not isinstance(max_depth, (int, float)) or not (
                math.isfinite(max_depth) and max_depth > 0):
            raise BackendError(f"{source} carries metadata with max_depth_m {max_depth!r}; expected a finite "
                               "distance > 0 in metres")
        for key in (("input_height", "input_width") if self.kind == "depth" else ("image_size", "latent_dim")):
            _positive_int(self.config.get(key), key, source)
        if self.kind == "vae" and (not isinstance(self.mode, str) or self.mode not in MODE_CHANNELS):
            raise BackendError(f"{source} carries metadata with mode {self.mode!r}; expected one of "
                               f"{', '.join(MODE_CHANNELS)}")
        expected = self.sample_shapes()[self.inputs[0]]
        if self.input_shape != expected:
            raise BackendError(f"{source} carries metadata with input_shape {self.input_shape!r}, but its config "
                               f"makes the {self.part} input {expected!r}")
        if not isinstance(self.checkpoint_sha256, str) or not isinstance(self.extra, dict):
            raise BackendError(f"{source} carries metadata whose checkpoint_sha256 is not text or whose extra is "
                               "not a mapping")
        if self.latent_quantiser is not None:
            table = self.latent_quantiser
            lists = isinstance(table, dict) and all(isinstance(table.get(k), list) for k in ("lo", "hi"))
            if (not lists or self.kind != "vae" or len(table["lo"]) != self.latent_dim
                    or len(table["hi"]) != self.latent_dim):
                raise BackendError(f"{source} carries a latent quantiser table that is not lists 'lo' and 'hi' of "
                                   f"latent_dim ({self.latent_dim}) values each")

    @property
    def model_id(self) -> str:
        """The model id of latent messages (SPEC §4.3): the first 12 hex of the checkpoint's SHA-256."""
        return self.checkpoint_sha256[:12]

    def sample_shapes(self) -> dict[str, list[int]]:
        """Input and output name -> the shape of one sample (without the batch axis), from the config."""
        height, width = self.image_size
        if self.kind == "depth":
            channels_in, channels_out = 3, 1
        else:
            channels_in, channels_out = MODE_CHANNELS[self.mode]
        if self.part == "encoder":
            return {self.inputs[0]: [channels_in, height, width],
                    **{name: [self.latent_dim] for name in self.outputs}}
        if self.part == "decoder":
            return {self.inputs[0]: [self.latent_dim], self.outputs[0]: [channels_out, height, width]}
        return {self.inputs[0]: [3, height, width], **{name: [1, height, width] for name in self.outputs}}


def check_depth_geometry(values, part: str, source: str) -> None:
    """A depth part's geometry: a positive finite focal length or "unknown", a supervised box of
    fractions 0 <= top < bottom <= 1, 0 <= left < right <= 1 (or "full" / "unknown"), a known resize."""
    expected = ('expected, on a depth part, {"focal_length_px": <pixels > 0> or "unknown", "supervised": "full", '
                '"unknown" or [top, left, bottom, right] fractions, "resize": "crop" or "pad", "trained_on": <text>}')
    if not isinstance(values, dict) or part != "depth" or set(values) - {"focal_length_px", "supervised", "resize",
                                                                         "trained_on"}:
        raise BackendError(f"{source} carries depth geometry {values!r}; {expected}")
    focal = values.get("focal_length_px", UNKNOWN)
    focal_ok = focal == UNKNOWN or (isinstance(focal, (int, float)) and not isinstance(focal, bool)
                                    and math.isfinite(focal) and focal > 0)
    box = values.get("supervised", UNKNOWN)
    box_ok = box in ("full", UNKNOWN) or (
        isinstance(box, list) and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1)
    if not (focal_ok and box_ok and values.get("resize", "crop") in RESIZE_POLICIES
            and isinstance(values.get("trained_on", ""), str)):
        raise BackendError(f"{source} carries depth geometry {values!r}; {expected}")


def _positive_int(value, key: str, source: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BackendError(f"{source} carries metadata with {key} {value!r}; expected a whole number > 0")


def check_graph(info: ModelInfo, graph_inputs, graph_outputs, source: str) -> None:
    """The metadata against the graph it describes (SPEC §4.5): names, float32 tensors, and each
    sample's shape after a batch axis; a dimension the graph leaves symbolic accepts any size."""
    names = [i.name for i in graph_inputs], [o.name for o in graph_outputs]
    if names != (info.inputs, info.outputs):
        raise BackendError(f"{source} has inputs {names[0]} and outputs {names[1]}, but its metadata names inputs "
                           f"{info.inputs} and outputs {info.outputs}")
    expected = info.sample_shapes()
    for arg in (*graph_inputs, *graph_outputs):
        if arg.type != "tensor(float)":
            raise BackendError(f"{source} has {arg.name!r} of type {arg.type}; its metadata and the nodes expect "
                               "tensor(float) (float32)")
        want, shape = expected[arg.name], list(arg.shape)
        fits = len(shape) == 1 + len(want) and all(not isinstance(got, int) or got == size
                                                   for got, size in zip(shape[1:], want))
        if not fits:
            graph = "(batch, " + ", ".join(str(d) for d in shape[1:]) + ")" if shape else "()"
            older = (info.part == "decoder" and info.kind == "vae" and len(shape) == 4 and shape[1] == 4
                     and want[0] == 5)  # an RGB-D decoder from before the decoded validity channel
            raise BackendError(f"{source} metadata says {arg.name!r} is (batch, {', '.join(map(str, want))}) "
                               f"but the graph's {arg.name!r} is {graph}"
                               + ("; it decodes no depth validity, as exports before that channel did: train "
                                  "the VAE again and export it" if older else ""))


def info_from_checkpoint(payload: dict, part: str, checkpoint_sha256: str = "") -> ModelInfo:
    """The metadata of one part of a loaded checkpoint (see :func:`rgbd_vae_ros.models.load_checkpoint`)."""
    from rgbd_vae_ros.models.parts import MASK_OUTPUT, PART_IO

    config = dict(payload["model_config"])
    kind = payload.get("kind", "depth" if "input_height" in config else "vae")
    inputs, outputs = PART_IO[part]
    mask = None
    # mff_depth: DepthPart gives sigmoid(mask); an rgb2rgbd VAE its decoded validity as a probability
    if part == "depth" and ("mask_mode" in config if kind == "depth" else config.get("mode") == "rgb2rgbd"):
        outputs, mask = (*outputs, MASK_OUTPUT), {"output": MASK_OUTPUT, "kind": "probability"}
    if part == "decoder":
        shape = [config["latent_dim"]]
    elif kind == "depth":
        shape = [3, config["input_height"], config["input_width"]]
    else:
        channels = 3 if part == "depth" or config.get("mode") in ("rgb", "rgb2rgbd") else 4
        shape = [channels, config["image_size"], config["image_size"]]
    max_depth_m = float(payload.get("config", {}).get("train", {}).get("max_depth_m", 10.0))
    # a checkpoint may carry the latent quantiser table too (an export's, saved into it)
    quantiser = payload.get("latent_quantiser") if part in ("encoder", "decoder") else None
    geometry = None
    if part == "depth":  # recorded by the trainer (training/train/geometry.py); an older checkpoint: unknown
        recorded = payload.get("depth_geometry")
        geometry = _plain(recorded) if isinstance(recorded, dict) else {
            "focal_length_px": UNKNOWN, "supervised": UNKNOWN, "resize": "crop",
            "trained_on": "unknown: the checkpoint predates recorded depth geometry; the model's own input, "
                          "no focal-length scaling"}
    return ModelInfo(payload["model_name"], kind, part, _plain(config), list(inputs), list(outputs), shape,
                     max_depth_m, checkpoint_sha256, latent_quantiser=_plain(quantiser), mask=mask,
                     depth_geometry=geometry)


def _plain(value):
    """Tuples to lists, so the config survives JSON unchanged."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
