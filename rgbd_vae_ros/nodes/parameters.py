"""The perception nodes' parameters (SPEC §4.4): declarations and the one check of their values.

``problem(values)`` says what is wrong with a full set of values, or None. The nodes run it on their
start-up values (an invalid one ends the executable with one sentence) and on every change (the
change is refused with the reason); ``rgbd-vae bag process`` runs it on its ``-p`` values.
"""

from __future__ import annotations

import math
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange

from rgbd_vae_ros.inference import BACKENDS, DEVICES
from rgbd_vae_ros.latent import CODECS

__all__ = ["COMMON_PARAMETERS", "RELOADING", "defaults", "problem", "reliable_input"]


def _floats(low: float, high: float) -> dict:
    return {"floating_point_range": [FloatingPointRange(from_value=low, to_value=high, step=0.0)]}


def _ints(low: int, high: int) -> dict:
    return {"integer_range": [IntegerRange(from_value=low, to_value=high, step=1)]}


# name -> (default, description, read_only, extra descriptor fields)
COMMON_PARAMETERS: dict[str, tuple[Any, str, bool, dict]] = {
    "model": ("", "model file (.pt, .onnx, .engine/.plan) or a folder of exported parts", False, {}),
    "backend": ("auto", "auto | tensorrt | onnxruntime | torch", False, {}),
    "device": ("auto", "auto | cpu | cuda", False, {}),
    "fp16": (False, "half precision (needs a CUDA device)", False, {}),
    "min_depth": (0.0, "metres; nearer estimated or decoded depth is published as no reading", False,
                  _floats(0.0, 100.0)),
    "max_depth": (10.0, "metres; farther estimated or decoded depth is published as no reading (never clamped)", False,
                  _floats(0.1, 100.0)),
    "depth_encoding": ("32FC1", "32FC1 (metres, NaN invalid) | 16UC1 (millimetres, 0 invalid)", False, {}),
    "sync_slop": (0.02, "seconds within which an image and a depth image or camera_info count as one frame",
                  False, _floats(0.0, 1.0)),
    "use_depth": (True, "encode measured depth with the image (needs the depth topic)", True, {}),
    "queue_size": (5, "depth of the reliable output queues", True, _ints(1, 100)),
    "reliable_input": ("auto", "auto (match the publishers) | true | false", True, {"dynamic_typing": True}),
    "image_transport": ("raw", "raw (image) | compressed (image/compressed, jpeg or png)", True, {}),
    "autostart": (True, "configure and activate on start", True, {}),
    "output_width": (0, "decoded image width (0: the model's; set both or neither)", False, _ints(0, 8192)),
    "output_height": (0, "decoded image height (0: the model's; set both or neither)", False, _ints(0, 8192)),
    "latent_codec": ("q8", "latent data (SPEC §4.3): f32 | f16 (little-endian floats) | q8 | q4 (8/4-bit codes over "
                     "the model's quantiser table, latent/info)", False, {}),
    "max_rate": (0.0, "Hz; frames arriving faster are skipped before any work (0: no limit)", False,
                 _floats(0.0, 1000.0)),
    "mask_threshold": (0.5, "depth models with a validity mask: pixels whose mask is below this are published as no "
                       "reading (0.5 suits a mask trained on validity; an error-aware one needs its own, chosen "
                       "with rgbd_vae_training.mask_eval, docs/validity_mask.md)", False, _floats(0.0, 1.0)),
    "latent_logvar": (False, "send log sigma^2 after mu in each latent (f32 / f16 only)", False, {}),
}
CHOICES = {"backend": BACKENDS, "device": DEVICES, "depth_encoding": ("32FC1", "16UC1"),
           "reliable_input": ("auto", "true", "false"), "image_transport": ("raw", "compressed"),
           "latent_codec": CODECS}
# A change of these while configured loads the model again (and is refused if it cannot load);
# latent_codec: a q codec needs the model's quantiser table, which an old export lacks.
RELOADING = ("model", "backend", "device", "fp16", "latent_codec")


def defaults() -> dict[str, Any]:
    return {name: default for name, (default, *_rest) in COMMON_PARAMETERS.items()}


def reliable_input(value: Any) -> str:
    """'auto', 'true' or 'false' from the parameter (a launch file may pass a bool)."""
    return str(value).lower()


def problem(values: dict[str, Any], cuda_available=None) -> str | None:
    """What is wrong with ``values`` (every parameter), in one sentence; None when they are fine."""
    for name, choices in CHOICES.items():
        value = reliable_input(values[name]) if name == "reliable_input" else values[name]
        if value not in choices:
            return f"{name} {values[name]!r} is not one of {', '.join(choices)}"
    for name in ("min_depth", "max_depth", "sync_slop"):
        if not math.isfinite(values[name]):
            return f"{name} is {values[name]}; expected a finite number"
    if values["min_depth"] >= values["max_depth"]:
        return f"min_depth {values['min_depth']:g} m is not below max_depth {values['max_depth']:g} m"
    if bool(values["output_width"]) != bool(values["output_height"]):
        return (f"output_width is {values['output_width']} and output_height {values['output_height']}; "
                "set both (the decoded size) or neither (the model's size)")
    if values["latent_logvar"] and values["latent_codec"] not in ("f32", "f16"):
        return (f"latent_logvar is true with latent_codec {values['latent_codec']}; log sigma^2 travels only with "
                "f32 or f16, so set latent_codec to one of them or latent_logvar to false")
    if values["fp16"]:
        if values["device"] == "cpu":
            return "fp16 needs a CUDA device and device is cpu; set fp16 to false"
        if cuda_available is not None and not cuda_available():
            return "fp16 needs a CUDA device and this machine has none; set fp16 to false"
    return None
