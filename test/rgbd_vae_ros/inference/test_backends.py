"""Backends behind one interface: ONNX Runtime equals torch, metadata travels with the file, and
every bad model file is one clear sentence."""

import dataclasses
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from rgbd_vae_ros.inference import BackendError, backend_for_file, open_backend
from rgbd_vae_ros.inference.metadata import NORMALISATION, ModelInfo
from rgbd_vae_ros.models.parts import example_inputs
from rgbd_vae_ros.models import model_from_checkpoint

DEPLOYABLE = ["conv_vae", "rgb2rgbd", "vgg_vae", "resnet_vae", "fc_vae", "unet_depth"]


@pytest.mark.slow
@pytest.mark.parametrize("name", DEPLOYABLE)
def test_onnx_runtime_equals_torch_within_1e_4_on_fresh_inputs(name, exported, small_checkpoints):
    folder, rows = exported[name]
    assert all(r["max_abs_error"] < 1e-4 for r in rows)  # what export itself reports
    model = model_from_checkpoint(small_checkpoints[name])
    for row in rows:
        part = row["part"]
        ort = open_backend(folder / f"{part}.onnx", part, backend="onnxruntime")
        eager = open_backend(small_checkpoints[name], part, backend="torch")
        assert (ort.name, ort.device, ort.precision) == ("onnxruntime", "cpu", "fp32")
        for batch in (1, 4):  # dynamic batch
            inputs = example_inputs(model, part, batch, torch.Generator().manual_seed(99 + batch))
            feeds = {n: t.numpy() for n, t in zip(ort.info.inputs, inputs)}
            got, expected = ort.run(feeds), eager.run(feeds)
            assert set(got) == set(expected) == set(ort.info.outputs)
            for key in got:
                assert got[key].shape[0] == batch
                np.testing.assert_allclose(got[key], expected[key], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_exported_parts_are_the_deployable_parts_of_each_model(exported):
    parts = {name: sorted(r["part"] for r in rows) for name, (_, rows) in exported.items()}
    assert parts["conv_vae"] == ["decoder", "encoder"]
    assert parts["rgb2rgbd"] == ["decoder", "depth", "encoder"]
    assert parts["unet_depth"] == ["depth"]


def test_metadata_in_the_onnx_file_equals_the_checkpoints(exported, small_checkpoints):
    folder, _ = exported["conv_vae"]
    from_onnx = open_backend(folder / "encoder.onnx", "encoder").info
    from_checkpoint = open_backend(small_checkpoints["conv_vae"], "encoder", backend="torch").info
    # The export adds the latent quantiser table (fit at export, SPEC §4.3); everything else is the checkpoint's.
    assert dataclasses.replace(from_onnx, latent_quantiser=None) == from_checkpoint
    assert [len(from_onnx.latent_quantiser[key]) for key in ("lo", "hi")] == [16, 16]
    assert from_onnx.config["latent_dim"] == 16 and from_onnx.latent_dim == 16 and from_onnx.mode == "rgbd"
    assert from_onnx.input_shape == [4, 32, 32] and from_onnx.max_depth_m == 8.0
    assert from_onnx.normalisation == NORMALISATION and len(from_onnx.checkpoint_sha256) == 64
    assert ModelInfo.from_json(from_onnx.to_json(), "test") == from_onnx


def test_auto_picks_by_file_kind_and_explicit_choices_must_fit_the_file(exported, small_checkpoints, tmp_path):
    folder, _ = exported["conv_vae"]
    assert backend_for_file(small_checkpoints["conv_vae"]) == "torch"
    has_trt = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
    assert backend_for_file(folder / "encoder.onnx") == ("tensorrt" if has_trt else "onnxruntime")
    assert backend_for_file(folder / "encoder.onnx", device="cpu") == "onnxruntime"
    with pytest.raises(BackendError, match="the torch backend cannot run .* \\(a onnx file\\); it runs checkpoint"):
        backend_for_file(folder / "encoder.onnx", "torch")
    with pytest.raises(BackendError, match="backend 'tflite' is not one of"):
        backend_for_file(folder / "encoder.onnx", "tflite")
    assert open_backend(folder, "decoder").info.part == "decoder"  # a folder: <part>.onnx inside


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("truncated", "is not a readable ONNX model: truncated or another kind of file"),
    ("png", "is not a readable ONNX model: truncated or another kind of file"),
    ("no_metadata", "is an ONNX model without rgbd_vae_ros metadata; export it with rgbd-vae export"),
    ("mismatched", "is a encoder model, not the decoder this needs"),
    ("suffix", "is not a .pt checkpoint, an .onnx file or a TensorRT .engine/.plan"),
    ("empty_folder", "holds no decoder.engine, decoder.onnx or decoder.pt"),
])
def test_bad_model_files_are_one_clear_sentence(case, message, exported, tmp_path):
    import onnx

    folder, _ = exported["conv_vae"]
    encoder = folder / "encoder.onnx"
    path = tmp_path / "decoder.onnx"
    if case == "truncated":
        path.write_bytes(encoder.read_bytes()[:5000])
    elif case == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    elif case == "no_metadata":
        proto = onnx.load(encoder)
        del proto.metadata_props[:]
        onnx.save(proto, path)
    elif case == "mismatched":
        shutil.copy(encoder, path)
    elif case == "suffix":
        path = tmp_path / "decoder.tflite"
        path.write_bytes(b"x")
    elif case == "empty_folder":
        path = tmp_path
    with pytest.raises(BackendError, match=message) as error:
        open_backend(path, "decoder", backend="auto", device="cpu")
    assert "\n" not in str(error.value)


def test_a_checkpoint_needs_the_part_named_when_it_has_several(small_checkpoints):
    with pytest.raises(BackendError, match="name the part to run"):
        open_backend(small_checkpoints["conv_vae"])
    assert open_backend(small_checkpoints["unet_depth"]).info.part == "depth"
    with pytest.raises(BackendError, match="whose parts are depth, not 'encoder'"):
        open_backend(small_checkpoints["unet_depth"], "encoder")


def test_cuda_asked_for_where_there_is_none_is_a_clear_error(exported, small_checkpoints):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    folder, _ = exported["conv_vae"]
    with pytest.raises(BackendError, match="no CUDA provider"):
        open_backend(folder / "encoder.onnx", "encoder", "onnxruntime", device="cuda")
    with pytest.raises(BackendError, match="torch sees no CUDA device"):
        open_backend(small_checkpoints["conv_vae"], "encoder", "torch", device="cuda")


def test_a_missing_optional_package_is_named_in_the_error(exported, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an environment without it looks like
    folder, _ = exported["conv_vae"]
    with pytest.raises(BackendError, match="needs the package onnxruntime \\(pip install onnxruntime"):
        open_backend(folder / "encoder.onnx", "encoder", backend="onnxruntime")
