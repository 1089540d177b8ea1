"""INT8 parts (``rgbd-vae export --checkpoint F --out DIR --int8 --calib PATH``, SPEC §7.1): after
the fp32 export, each ``<part>.onnx`` is statically quantised by ONNX Runtime into
``<part>.int8.onnx`` beside it (QDQ format, per-channel int8 weights, uint8 activations whose
ranges are calibrated on frames of ``PATH``).

The calibration inputs are what the nodes feed the part: the frames go through the pipeline stages
(:mod:`rgbd_vae_ros.stages`) on the fp32 part, whose inputs are recorded, so the resize and the one
normalisation are the stages' own; a decoder is calibrated on the latents its encoder makes of the
same frames. An INT8 file carries the fp32 part's metadata (the nodes' load check compares it with
the graph, whose inputs and outputs stay float32) plus ``extra.precision`` = ``int8`` and where it
was calibrated, so ``model:=DIR/depth.int8.onnx`` runs it."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .export import ExportError

# "A few dozen" frames, evenly spaced over the calibration data: min/max ranges settle with this
# many on the synthetic rooms, and calibration stays a few seconds per part on 2 cores.
CALIBRATION_FRAMES = 32
PRECISION = "int8"
MIN_OPSET = 13  # DequantizeLinear's per-channel axis


def int8_name(part: str) -> str:
    return f"{part}.int8.onnx"


def calibration_frames(path: str | os.PathLike, count: int = CALIBRATION_FRAMES) -> tuple[list, str]:
    """Up to ``count`` frames evenly spaced over every frame of ``path`` (any layout ``--data``
    takes, or a folder of images), and a description of where they came from."""
    from .data import DataError, open_dataset

    try:
        reader = open_dataset(path)
        total = len(reader)
        if total == 0:
            raise ExportError(f"calibration data {str(path)!r} holds no frames; expected a data set or a folder of "
                              "images to calibrate the INT8 parts on")
        picked = np.unique(np.linspace(0, total - 1, min(total, count)).round().astype(int))
        frames = [reader[int(i)] for i in picked]
    except DataError as exc:
        raise ExportError(f"cannot read calibration frames from {str(path)!r}: {exc}") from None
    return frames, f"{len(frames)} of the {total} frames of {path}"


class _RecordingBackend:
    """Runs a part like the backend it wraps and keeps a copy of every input it is given."""

    def __init__(self, backend):
        self.backend, self.info, self.feeds = backend, backend.info, []
        self.name, self.device, self.precision = backend.name, backend.device, backend.precision

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.feeds.append({name: np.array(value, dtype=np.float32) for name, value in inputs.items()})
        return self.backend.run(inputs)

    def close(self) -> None:
        self.backend.close()


def calibration_feeds(folder: Path, parts: list[str], frames: list) -> dict[str, list[dict[str, np.ndarray]]]:
    """Part -> the inputs its fp32 ONNX file in ``folder`` gets when the stages process ``frames``."""
    from rgbd_vae_ros.inference.onnxruntime_backend import OnnxRuntimeBackend
    from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage, StageError

    stage_types = {"depth": DepthStage, "encoder": EncodeStage, "decoder": DecodeStage}
    stages = {}
    try:
        for part in parts:
            stages[part] = stage_types[part](_RecordingBackend(OnnxRuntimeBackend(folder / f"{part}.onnx", "cpu")))
        encoder = stages.get("encoder")
        if encoder is not None and encoder.uses_depth and any(f.depth_m is None for f in frames):
            raise ExportError("the calibration frames have no depth, but the encoder takes RGB-D; give --calib a "
                              "data set with depth")
        for frame in frames:
            if "depth" in stages:
                stages["depth"](frame.rgb_u8)
            if encoder is not None:
                mu, _ = encoder(frame.rgb_u8, frame.depth_m if encoder.uses_depth else None)
                if "decoder" in stages:
                    stages["decoder"](mu)
    except StageError as exc:
        raise ExportError(f"cannot calibrate the INT8 parts: {exc}") from None
    finally:
        for stage in stages.values():
            stage.close()
    return {part: stage.backend.feeds for part, stage in stages.items()}


class _Feeds:
    """onnxruntime.quantization's CalibrationDataReader over recorded inputs."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._next = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._next, None)


@contextmanager
def _quiet_quantiser():
    """ONNX Runtime's quantiser logs advice through the root logger (``logging.warning``), which
    would print to stderr and install a handler for the whole process; the export reports its own
    summary instead."""
    root, handler = logging.getLogger(), logging.NullHandler()
    root.addHandler(handler)  # a handler present: logging.warning() does not call basicConfig()
    previous = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        root.removeHandler(handler)


def quantise_part(fp32_path: Path, int8_path: Path, feeds: list[dict[str, np.ndarray]], calibrated_on: str) -> dict:
    """``fp32_path`` statically quantised into ``int8_path`` with its metadata, then both run on
    ``feeds``: the row says how far the INT8 outputs are from the fp32 ones there."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from rgbd_vae_ros.files import atomic_write_bytes
    from rgbd_vae_ros.inference.metadata import METADATA_KEY, ModelInfo

    metadata = {p.key: p.value for p in onnx.load(str(fp32_path)).metadata_props}
    info = ModelInfo.from_json(metadata[METADATA_KEY], repr(str(fp32_path)))
    quantised = int8_path.with_name(f".{int8_path.name}.quantising")
    try:
        with _quiet_quantiser():
            quantize_static(str(fp32_path), str(quantised), _Feeds(feeds), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load(str(quantised))
        onnx.checker.check_model(proto, full_check=True)
    except OSError:
        raise
    except Exception as exc:  # ORT's quantiser raises many types (ValueError, RuntimeError, its own)
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ExportError(f"the {info.part} cannot be quantised to INT8 ({type(exc).__name__}: {text}); nothing was "
                          "exported") from None
    finally:
        quantised.unlink(missing_ok=True)
    info.extra = {**info.extra, "precision": PRECISION, "calibrated_on": calibrated_on,
                  "quantisation": "onnxruntime quantize_static, QDQ, per-channel int8 weights, uint8 activations, "
                                  "min/max calibration"}
    del proto.metadata_props[:]  # the fp32 part's, ours updated (not what the quantiser adds)
    for key, value in {**metadata, METADATA_KEY: info.to_json()}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"rgbd_vae_ros {info.model_name} {info.part} int8"
    atomic_write_bytes(int8_path, proto.SerializeToString())
    error = output_change(fp32_path, int8_path, feeds)
    return {"part": info.part, "precision": PRECISION, "inputs": info.inputs, "outputs": info.outputs,
            "calibration_frames": len(feeds), **error}


def output_change(fp32_path: Path, int8_path: Path, feeds: list[dict[str, np.ndarray]]) -> dict:
    """Mean and largest |INT8 - fp32| over every output for ``feeds``; an INT8 output that is not
    finite fails the export."""
    from rgbd_vae_ros.inference.onnxruntime_backend import OnnxRuntimeBackend

    fp32, int8 = OnnxRuntimeBackend(fp32_path, "cpu"), OnnxRuntimeBackend(int8_path, "cpu")
    differences = []
    try:
        for feed in feeds:
            expected, got = fp32.run(feed), int8.run(feed)
            for name in fp32.info.outputs:
                if not np.isfinite(got[name]).all():
                    raise ExportError(f"the INT8 {fp32.info.part}'s output {name!r} is not finite (NaN or inf) on a "
                                      "calibration frame; nothing was exported")
                differences.append(np.abs(got[name] - expected[name]).ravel())
    finally:
        fp32.close()
        int8.close()
    every = np.concatenate(differences)
    return {"mean_abs_change": float(every.mean()), "max_abs_change": float(every.max())}


def quantise_parts(folder: Path, parts: list[str], calibration: tuple[list, str]) -> list[dict]:
    """``<part>.int8.onnx`` in ``folder`` beside each fp32 ``<part>.onnx``, calibrated on the frames
    of :func:`calibration_frames`; raises :class:`ExportError` (one sentence) when a part will not do."""
    frames, calibrated_on = calibration
    feeds = calibration_feeds(folder, parts, frames)
    return [{**quantise_part(folder / f"{part}.onnx", folder / int8_name(part), feeds[part], calibrated_on),
             "file_name": int8_name(part)} for part in parts]


def check_arguments(args) -> str | None:
    """What is wrong with ``--int8`` / ``--calib`` as given (exit status 2), or None."""
    int8, calib = getattr(args, "int8", False), getattr(args, "calib", None)
    if int8 and calib is None:
        return "--int8 needs --calib PATH, the frames the INT8 parts are calibrated on"
    if calib is not None and not int8:
        return "--calib is only used with --int8 (calibration data of the INT8 parts)"
    if calib is not None and not Path(calib).exists():
        return f"--calib {calib!r} does not exist; expected a data set or a folder of images"
    opset = getattr(args, "opset", MIN_OPSET)
    if int8 and opset < MIN_OPSET:
        return (f"--int8 needs --opset {MIN_OPSET} or later (per-channel INT8 weights in ONNX); "
                f"--opset is {opset}")
    return None


def describe(rows: list[dict]) -> list[str]:
    """One line per INT8 part for the export's report."""
    return [f"{r['file']}: INT8, calibrated on {r['calibration_frames']} frames; output vs fp32 on them: mean "
            f"|change| {r['mean_abs_change']:.3g}, max {r['max_abs_change']:.3g} (over all its outputs, in the "
            "graph's own units)"
            for r in rows if r.get("precision") == PRECISION]
