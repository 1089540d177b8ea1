"""Inference backends behind one interface (SPEC §4.4): load a model file, run named numpy inputs,
return named numpy outputs, say what runs where.

    backend = open_backend("models/encoder.onnx")           # auto: the best the file and machine allow
    outputs = backend.run({"input": x})                     # {"mu": ..., "logvar": ...}
    backend.name, backend.device, backend.precision, backend.info   # info: ModelInfo (metadata)

File kinds: ``.pt`` checkpoint (torch), ``.onnx`` (ONNX Runtime, or TensorRT through a cached
engine), ``.engine``/``.plan`` (TensorRT). ``auto``: TensorRT when given an engine or when an ONNX
file can be built into one on a CUDA device, else ONNX Runtime (CUDA provider when present, else
CPU), else torch. Optional packages are imported only when their backend is chosen.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import BackendError
from .metadata import ModelInfo

__all__ = ["BACKENDS", "DEVICES", "Backend", "BackendError", "ModelInfo", "backend_for_file", "open_backend",
           "resolve_model_file"]

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")
_SUFFIX_KIND = {".pt": "checkpoint", ".pth": "checkpoint", ".onnx": "onnx", ".engine": "engine", ".plan": "engine"}
# which backends can run which kind of file
_RUNS = {"torch": ("checkpoint",), "onnxruntime": ("onnx",), "tensorrt": ("engine", "onnx")}


class Backend(Protocol):
    name: str  # 'torch' | 'onnxruntime' | 'tensorrt'
    device: str  # 'cpu' | 'cuda'
    precision: str  # 'fp32' | 'fp16' | 'int8'
    info: ModelInfo

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cuda_available() -> bool:
    if not _available("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def resolve_model_file(path: str | os.PathLike, part: str | None = None, backend: str = "auto") -> Path:
    """``path`` itself, or in a folder the best file for ``part`` that ``backend`` runs (engine, then
    ONNX, then checkpoint)."""
    path = Path(path)
    if path.is_dir():
        if part is None:
            raise BackendError(f"{str(path)!r} is a folder; name the part (encoder, decoder or depth) to look for")
        kinds = _RUNS.get(backend, tuple(_SUFFIX_KIND.values()))
        for suffix in (".engine", ".plan", ".onnx", ".pt"):
            if _SUFFIX_KIND[suffix] not in kinds:
                continue
            candidate = path / f"{part}{suffix}"
            if candidate.is_file():
                return candidate
        raise BackendError(f"folder {str(path)!r} holds no {part}.engine, {part}.onnx or {part}.pt")
    if not path.exists():
        raise BackendError(f"model file {str(path)!r} does not exist")
    if path.suffix.lower() not in _SUFFIX_KIND:
        raise BackendError(f"model file {str(path)!r} is not a .pt checkpoint, an .onnx file or a TensorRT "
                           ".engine/.plan")
    return path


def backend_for_file(path: Path, backend: str = "auto", device: str = "auto") -> str:
    """The backend that will run ``path`` (SPEC §4.4 order for ``auto``)."""
    if backend not in BACKENDS:
        raise BackendError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise BackendError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    kind = _SUFFIX_KIND[path.suffix.lower()]
    if backend != "auto":
        if kind not in _RUNS[backend]:
            raise BackendError(f"the {backend} backend cannot run {str(path)!r} (a {kind} file); "
                               f"it runs {' or '.join(_RUNS[backend])} files")
        return backend
    if kind == "engine":
        return "tensorrt"
    if kind == "checkpoint":
        return "torch"
    if device != "cpu" and _available("tensorrt") and _cuda_available():
        return "tensorrt"
    if _available("onnxruntime"):
        return "onnxruntime"
    raise BackendError(f"no backend here runs {str(path)!r}: install onnxruntime (or tensorrt on a GPU)")


def engine_cache_dir() -> Path:
    return Path(os.environ.get("RGBD_VAE_ENGINE_CACHE", Path.home() / ".cache" / "rgbd_vae_ros" / "engines"))


def open_backend(path: str | os.PathLike, part: str | None = None, backend: str = "auto", device: str = "auto",
                 fp16: bool = False) -> Backend:
    """Load ``path`` (a file, or a folder holding ``<part>.<ext>``) on the chosen backend."""
    file = resolve_model_file(path, part, backend)
    chosen = backend_for_file(file, backend, device)
    if chosen == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(file, part, device, fp16)
    if chosen == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        opened = OnnxRuntimeBackend(file, device, fp16)
    else:
        from .tensorrt_backend import TensorRTBackend, build_engine

        if file.suffix.lower() == ".onnx":  # built once; rebuilt only for another TensorRT, GPU or precision
            from rgbd_vae_ros.models.checkpoint import file_sha256

            name = f"{file.stem}-{file_sha256(file)[:16]}-{'fp16' if fp16 else 'fp32'}.engine"
            file, _ = build_engine(file, engine_cache_dir() / name, fp16=fp16,
                                   timing_cache=engine_cache_dir() / "timing.cache")
        opened = TensorRTBackend(file, device, fp16)
    if part is not None and opened.info.part != part:
        raise BackendError(f"{str(file)!r} is a {opened.info.part} model, not the {part} this needs")
    return opened
