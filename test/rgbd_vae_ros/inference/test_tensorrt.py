"""TensorRT: the build-and-run path where TensorRT and a GPU exist; the clear errors everywhere."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rgbd_vae_ros.inference import BackendError, open_backend
from rgbd_vae_ros.inference.tensorrt_backend import check_engine_matches, engine_key, read_sidecar

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
HAS_GPU = torch.cuda.is_available()
needs_tensorrt = pytest.mark.skipif(not (HAS_TENSORRT and HAS_GPU),
                                    reason="needs the tensorrt package and a CUDA GPU, which this machine lacks")


@needs_tensorrt
def test_an_engine_is_built_run_and_then_reused(exported, tmp_path):
    from rgbd_vae_ros.inference.tensorrt_backend import build_engine

    folder, _ = exported["conv_vae"]
    engine = tmp_path / "encoder.engine"
    path, built = build_engine(folder / "encoder.onnx", engine, fp16=True, timing_cache=tmp_path / "timing.cache")
    assert built and path.is_file() and (tmp_path / "timing.cache").is_file()
    assert build_engine(folder / "encoder.onnx", engine, fp16=True)[1] is False  # never rebuilt when it matches
    trt, ort = open_backend(engine, "encoder"), open_backend(folder / "encoder.onnx", "encoder", "onnxruntime")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 32, 32)).astype(np.float32)
    got, expected = trt.run({"input": x}), ort.run({"input": x})
    np.testing.assert_allclose(got["mu"], expected["mu"], atol=5e-2)  # FP16 kernels
    assert (trt.name, trt.device, trt.precision) == ("tensorrt", "cuda", "fp16")


@needs_tensorrt
def test_an_engine_whose_metadata_lies_about_its_graph_is_refused_at_load(exported, tmp_path):
    import json

    from rgbd_vae_ros.inference.tensorrt_backend import build_engine, sidecar_path

    folder, _ = exported["conv_vae"]
    engine, _ = build_engine(folder / "encoder.onnx", tmp_path / "encoder.engine", fp16=False)
    assert open_backend(engine, "encoder").info.input_shape == [4, 32, 32]
    values = json.loads(sidecar_path(engine).read_text())
    values["config"]["image_size"], values["input_shape"] = 64, [4, 64, 64]
    sidecar_path(engine).write_text(json.dumps(values))
    with pytest.raises(BackendError, match=r"metadata says 'input' is \(batch, 4, 64, 64\) but the graph's 'input' "
                                           r"is \(batch, 4, 32, 32\)"):
        open_backend(engine, "encoder")
    values["max_depth_m"] = 0
    sidecar_path(engine).write_text(json.dumps(values))
    with pytest.raises(BackendError, match="max_depth_m 0; expected a finite distance > 0 in metres"):
        open_backend(engine, "encoder")


def test_an_engines_tensors_are_checked_like_an_onnx_graph(exported):
    """The engine side of the check without a GPU: stand-ins for the few engine calls it makes
    (the real engine path is the @needs_tensorrt test above)."""
    from types import SimpleNamespace

    from rgbd_vae_ros.inference.metadata import check_graph
    from rgbd_vae_ros.inference.tensorrt_backend import _engine_io

    info = open_backend(exported["conv_vae"][0] / "encoder.onnx", "encoder", "onnxruntime").info
    trt = SimpleNamespace(TensorIOMode=SimpleNamespace(INPUT="in", OUTPUT="out"), nptype=lambda t: t)

    def engine(tensors):  # name -> (mode, shape, dtype), in the engine's own order
        names = list(tensors)
        return SimpleNamespace(num_io_tensors=len(names), get_tensor_name=names.__getitem__,
                               get_tensor_mode=lambda n: tensors[n][0], get_tensor_shape=lambda n: tensors[n][1],
                               get_tensor_dtype=lambda n: tensors[n][2])

    good = {"logvar": ("out", (-1, 16), np.float16), "input": ("in", (-1, 4, 32, 32), np.float32),
            "mu": ("out", (-1, 16), np.float32)}
    check_graph(info, *_engine_io(trt, engine(good), info), "'e.engine'")  # any order, dynamic batch, fp16 I/O
    with pytest.raises(BackendError, match=r"'e.engine' metadata says 'input' is \(batch, 4, 32, 32\) but the "
                                           r"graph's 'input' is \(batch, 4, 64, 64\)"):
        check_graph(info, *_engine_io(trt, engine({**good, "input": ("in", (-1, 4, 64, 64), np.float32)}), info),
                    "'e.engine'")
    with pytest.raises(BackendError, match="has 'mu' of type tensor\\(int32\\)"):
        check_graph(info, *_engine_io(trt, engine({**good, "mu": ("out", (-1, 16), np.int32)}), info), "'e.engine'")


@pytest.mark.slow
@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here")
def test_without_tensorrt_an_engine_is_a_clear_error(tmp_path, exported):
    engine = tmp_path / "encoder.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(BackendError, match="needs NVIDIA TensorRT .* it is not installed here"):
        open_backend(engine, "encoder")
    folder, _ = exported["conv_vae"]
    done = subprocess.run([str(Path(sys.executable).with_name("rgbd-vae")), "engine", "--onnx",
                           str(folder / "encoder.onnx"), "--out", str(tmp_path / "e.engine"), "--fp16"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("rgbd-vae engine: error: the tensorrt backend needs NVIDIA TensorRT")
    assert not (tmp_path / "e.engine").exists()


def test_on_cpu_the_tensorrt_backend_is_refused_before_anything_loads(tmp_path):
    engine = tmp_path / "x.plan"
    engine.write_bytes(b"\x00")
    with pytest.raises(BackendError, match="runs on a CUDA GPU, not on device 'cpu'"):
        open_backend(engine, "encoder", "tensorrt", device="cpu")


def test_the_engine_key_changes_with_everything_an_engine_depends_on():
    base = ("abc", "10.9.0", "NVIDIA H100 (sm_90)", "fp16", [4, 128, 128])
    key = engine_key(*base)
    assert engine_key(*base) == key
    for i, other in enumerate(("abd", "10.9.1", "NVIDIA L4 (sm_89)", "fp32", [4, 64, 64])):
        changed = list(base)
        changed[i] = other
        assert engine_key(*changed) != key


def test_an_engine_from_another_gpu_or_tensorrt_is_refused_with_the_way_out(tmp_path):
    built = {"tensorrt_version": "10.9.0", "gpu": "NVIDIA H100 (sm_90)"}
    check_engine_matches(built, "10.9.0", "NVIDIA H100 (sm_90)", "'a.engine'")
    with pytest.raises(BackendError, match="built with TensorRT 10.9.0 for NVIDIA H100 .* this is TensorRT 10.9.0 on "
                                           "NVIDIA L4 .* rebuild it with rgbd-vae engine"):
        check_engine_matches(built, "10.9.0", "NVIDIA L4 (sm_89)", "'a.engine'")
    with pytest.raises(BackendError, match="has no metadata file 'b.engine.json' beside it"):
        read_sidecar(tmp_path / "b.engine")


def test_int8_calibration_samples_are_what_the_model_sees(exported, tmp_path):
    from PIL import Image as PILImage

    from rgbd_vae_training.engine import calibration_batch

    for i in range(3):
        PILImage.new("RGB", (90, 60), (i * 100, 50, 255)).save(tmp_path / f"{i}.png")
    samples = calibration_batch(str(exported["unet_depth"][0] / "depth.onnx"), tmp_path)
    assert samples.shape == (3, 3, 36, 48) and samples.dtype == np.float32
    np.testing.assert_allclose(samples[1, :, 0, 0], [100 / 127.5 - 1, 50 / 127.5 - 1, 1.0], atol=1e-6)
    latents = calibration_batch(str(exported["conv_vae"][0] / "decoder.onnx"), tmp_path, limit=16)
    assert latents.shape == (16, 16)  # a decoder calibrates on the prior
    with pytest.raises(ValueError, match="takes 4 channels; INT8 calibration from images supports RGB"):
        calibration_batch(str(exported["conv_vae"][0] / "encoder.onnx"), tmp_path)


def test_engine_command_checks_its_arguments_before_anything_else(exported, tmp_path, capsys):
    from rgbd_vae_training.cli import main as cli

    onnx_file = str(exported["unet_depth"][0] / "depth.onnx")
    assert cli(["engine", "--onnx", onnx_file, "--out", str(tmp_path / "d.engine"), "--int8"]) == 1
    assert "--int8 needs --calib DIR" in capsys.readouterr().err
    assert cli(["engine", "--onnx", onnx_file, "--out", str(tmp_path / "d.bin")]) == 1
    assert "should end in .engine or .plan" in capsys.readouterr().err
