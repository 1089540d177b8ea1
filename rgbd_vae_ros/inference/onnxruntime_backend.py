"""Runs an exported ``.onnx`` part with ONNX Runtime (CUDA provider when present)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import BackendError
from .metadata import METADATA_KEY, ModelInfo, check_graph


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendError("the onnxruntime backend needs the package onnxruntime "
                           "(pip install onnxruntime, or onnxruntime-gpu for CUDA)") from None
    return onnxruntime


def open_session(path: str | os.PathLike, device: str = "auto", threads: int = 0):
    """An ONNX Runtime session of ``path`` on ``device`` (CUDA when asked or available), with the
    package's settings; BackendError with one sentence when the file or the device cannot serve."""
    ort = import_onnxruntime()
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda:
        raise BackendError("device 'cuda' was asked for but ONNX Runtime has no CUDA provider "
                           "(pip install onnxruntime-gpu)")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; ours are raised as BackendError
    # Pool threads that sleep between ops instead of spinning: a spinning thread holds a core that
    # a node's executor and worker threads need on a small CPU (2 cores, the demo's models fed at
    # 30 Hz: 18-23 FPS, median 47-59 ms with spinning; 30 FPS, 8 ms without; docs/benchmarks.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
        raise BackendError(f"{str(path)!r} is not a readable ONNX model: truncated or another kind of file "
                           f"({type(exc).__name__})") from None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: str = "auto", fp16: bool = False, threads: int = 0):
        self.session = open_session(path, device, threads)
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise BackendError(f"{str(path)!r} is an ONNX model without rgbd_vae_ros metadata; "
                               "export it with rgbd-vae export")
        self.info: ModelInfo = ModelInfo.from_json(text, repr(str(path)))
        check_graph(self.info, self.session.get_inputs(), self.session.get_outputs(), repr(str(path)))
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.precision = self.info.extra.get("precision", "fp32")  # int8: rgbd-vae export --int8
        self.path = Path(path)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in self.info.inputs}
        return dict(zip(self.info.outputs, self.session.run(None, feeds)))

    def close(self) -> None:
        self.session = None

