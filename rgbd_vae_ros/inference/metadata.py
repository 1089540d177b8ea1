"""What travels with every deployable model file, so a node needs only the file: model name and
config, the part, input/output names, sizes, the normalisation and the checkpoint's hash. ONNX
files carry it in ``metadata_props``; TensorRT engines in a JSON file beside them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import BackendError

METADATA_KEY = "rgbd_vae_ros"
METADATA_FORMAT = "rgbd_vae_ros.model.v1"
# The normalisation of rgbd_vae_ros.processing: RGB u8 -> u8 / 127.5 - 1; depth m -> 2 m / max - 1
# (clipped, invalid -> -1); every model output in [-1, 1] maps back the same way.
NORMALISATION = "unit_range_v1"


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
        if info.normalisation != NORMALISATION:
            raise BackendError(f"{source} expects normalisation {info.normalisation!r}; this build has {NORMALISATION!r}")
        return info


def info_from_checkpoint(payload: dict, part: str, checkpoint_sha256: str = "") -> ModelInfo:
    """The metadata of one part of a loaded checkpoint (see :func:`rgbd_vae_ros.models.load_checkpoint`)."""
    from rgbd_vae_ros.models.parts import PART_IO

    config = dict(payload["model_config"])
    kind = payload.get("kind", "depth" if "input_height" in config else "vae")
    inputs, outputs = PART_IO[part]
    if part == "decoder":
        shape = [config["latent_dim"]]
    elif kind == "depth":
        shape = [3, config["input_height"], config["input_width"]]
    else:
        channels = 3 if part == "depth" or config.get("mode") in ("rgb", "rgb2rgbd") else 4
        shape = [channels, config["image_size"], config["image_size"]]
    max_depth_m = float(payload.get("config", {}).get("train", {}).get("max_depth_m", 10.0))
    return ModelInfo(payload["model_name"], kind, part, _plain(config), list(inputs), list(outputs), shape,
                     max_depth_m, checkpoint_sha256)


def _plain(value):
    """Tuples to lists, so the config survives JSON unchanged."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
