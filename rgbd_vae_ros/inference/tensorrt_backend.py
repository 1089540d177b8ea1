"""TensorRT: build engines from exported ONNX (FP16, INT8 with calibration images, an optimisation
profile, a timing cache) and run them with device buffers. The only module importing tensorrt.

Every engine has a JSON file beside it (``<engine>.json``): the model metadata plus the key it was
built for — TensorRT version, GPU, precision, input shape and the ONNX file's hash. An engine is
rebuilt only when that key changes, and refused at load when it names another GPU or TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rgbd_vae_ros.files import atomic_write_bytes

from .errors import BackendError
from .metadata import ModelInfo, check_graph

MAX_BATCH = 8


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendError("the tensorrt backend needs NVIDIA TensorRT (pip install tensorrt) and a CUDA GPU; "
                           "it is not installed here") from None
    return tensorrt


def _cuda_torch():
    """torch with a CUDA device: it owns the device buffers and the stream."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError("the tensorrt backend needs a CUDA GPU, and torch sees none")
    return torch


def gpu_name() -> str:
    torch = _cuda_torch()
    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} (sm_{major}{minor})"


def engine_key(onnx_sha256: str, trt_version: str, gpu: str, precision: str, input_shape: list[int]) -> str:
    """What an engine depends on; equal keys mean a cached engine can be reused as it is."""
    text = json.dumps([onnx_sha256, trt_version, gpu, precision, list(input_shape), MAX_BATCH])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def sidecar_path(engine: str | os.PathLike) -> Path:
    return Path(f"{engine}.json")


def check_engine_matches(extra: dict, trt_version: str, gpu: str, source: str) -> None:
    """An engine runs only on the TensorRT version and GPU it was built with."""
    built_version, built_gpu = extra.get("tensorrt_version"), extra.get("gpu")
    if built_version != trt_version or built_gpu != gpu:
        raise BackendError(f"{source} was built with TensorRT {built_version} for {built_gpu}; this is TensorRT "
                           f"{trt_version} on {gpu}: rebuild it with rgbd-vae engine")


def read_sidecar(engine: str | os.PathLike) -> ModelInfo:
    path = sidecar_path(engine)
    if not path.is_file():
        raise BackendError(f"engine {str(engine)!r} has no metadata file {path.name!r} beside it; "
                           "build it with rgbd-vae engine")
    return ModelInfo.from_json(path.read_text(), repr(str(path)))


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, device: str = "auto", fp16: bool = False):
        if device == "cpu":
            raise BackendError("the tensorrt backend runs on a CUDA GPU, not on device 'cpu'")
        trt = import_tensorrt()
        torch = _cuda_torch()
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"engine {str(path)!r} does not exist")
        self.info = read_sidecar(path)
        check_engine_matches(self.info.extra, trt.__version__, gpu_name(), repr(str(path)))
        self._logger = trt.Logger(trt.Logger.ERROR)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise BackendError(f"{str(path)!r} is not a TensorRT engine this runtime can load (truncated or foreign)")
        check_graph(self.info, *_engine_io(trt, self.engine, self.info), repr(str(path)))
        self.context = self.engine.create_execution_context()
        self._torch, self._trt = torch, trt
        self.device, self.precision, self.path = "cuda", self.info.extra.get("precision", "fp32"), path

    def _dtype(self, name: str):
        """The torch dtype of an engine tensor (inputs are cast to it, outputs allocated in it)."""
        numpy_dtype = self._trt.nptype(self.engine.get_tensor_dtype(name))
        return self._torch.from_numpy(np.zeros(0, dtype=numpy_dtype)).dtype

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        keep = []  # the device copies of the inputs must live until the run has finished
        for name in self.info.inputs:
            tensor = torch.from_numpy(np.ascontiguousarray(inputs[name])).to("cuda", self._dtype(name))
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
            keep.append(tensor)
        outputs = {}
        for name in self.info.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            tensor = torch.empty(shape, dtype=self._dtype(name), device="cuda")
            self.context.set_tensor_address(name, tensor.data_ptr())
            outputs[name] = tensor
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"TensorRT failed to run {str(self.path)!r}")
        stream.synchronize()
        return {name: t.float().cpu().numpy() for name, t in outputs.items()}

    def close(self) -> None:
        self.context = self.engine = None


def _engine_io(trt, engine, info: ModelInfo) -> tuple[list, list]:
    """The engine's input and output tensors as :func:`check_graph` reads them: in the metadata's
    order where the names agree (run() binds by name), a dynamic (-1) dimension symbolic, and any
    float tensor counted as float32 since run() casts to and from it."""
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = [None if d < 0 else int(d) for d in engine.get_tensor_shape(name)]
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        kind = "tensor(float)" if dtype.kind == "f" else f"tensor({dtype})"
        tensor = SimpleNamespace(name=name, shape=shape, type=kind)
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(tensor)
    order = {name: i for i, name in enumerate(info.inputs + info.outputs)}
    return tuple(sorted(tensors, key=lambda t: order.get(t.name, len(order))) for tensors in (inputs, outputs))


def build_engine(onnx_path: str | os.PathLike, out: str | os.PathLike, fp16: bool = True, int8: bool = False,
                 calibration: np.ndarray | None = None, timing_cache: str | os.PathLike | None = None,
                 workspace_gib: float = 2.0) -> tuple[Path, bool]:
    """Build ``out`` from ``onnx_path``, or reuse it when its key matches. Returns (path, built)."""
    from .onnxruntime_backend import OnnxRuntimeBackend

    trt = import_tensorrt()
    gpu = gpu_name()
    onnx_path, out = Path(onnx_path), Path(out)
    info = OnnxRuntimeBackend(onnx_path, device="cpu").info  # validates the file and reads its metadata
    onnx_bytes = onnx_path.read_bytes()
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    key = engine_key(hashlib.sha256(onnx_bytes).hexdigest(), trt.__version__, gpu, precision, info.input_shape)
    if out.is_file() and sidecar_path(out).is_file():
        try:
            if read_sidecar(out).extra.get("key") == key:
                return out, False
        except BackendError:
            pass  # unreadable metadata: build again
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {str(onnx_path)!r}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16 or int8:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    name = info.inputs[0]
    sample = tuple(info.input_shape)
    profile.set_shape(name, (1, *sample), (1, *sample), (MAX_BATCH, *sample))
    config.add_optimization_profile(profile)
    if int8:
        if calibration is None or len(calibration) == 0:
            raise BackendError("INT8 needs calibration images (--calib DIR)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, calibration, out.with_suffix(".calib"))
        config.set_calibration_profile(profile)
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT could not build an engine from {str(onnx_path)!r} (see its log above)")
    if timing_cache:
        atomic_write_bytes(timing_cache, bytes(cache.serialize()))
    info.extra = {"key": key, "tensorrt_version": trt.__version__, "gpu": gpu, "precision": precision,
                  "max_batch": MAX_BATCH, "onnx": onnx_path.name}
    atomic_write_bytes(out, bytes(serialized))
    atomic_write_bytes(sidecar_path(out), info.to_json().encode())
    return out, True


def _calibrator(trt, batches: np.ndarray, cache_file: Path):
    """An entropy calibrator over preprocessed float32 samples (N, C, H, W), fed one by one."""
    torch = _cuda_torch()
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise BackendError(f"TensorRT {trt.__version__} has no INT8 calibration API; build with --fp16")

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.index, self.current = 0, None

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self.index >= len(batches):
                return None
            self.current = torch.from_numpy(batches[self.index:self.index + 1]).cuda()
            self.index += 1
            return [self.current.data_ptr()]

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache):
            cache_file.write_bytes(bytes(cache))

    return Calibrator()
