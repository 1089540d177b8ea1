"""Model files are checked when they load, before any frame (SPEC §4.5): the metadata against the
graph, the metadata's values, a checkpoint's tensors against its config before allocating. Each
failure is one sentence naming what was found and what was expected."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from rgbd_vae_ros.inference import BackendError, open_backend
from rgbd_vae_ros.inference.metadata import METADATA_KEY, MODE_CHANNELS, ModelInfo


def _with_metadata(source, path, edit):
    """A copy of the ONNX file ``source`` whose metadata JSON went through ``edit`` (a dict ->
    None function, or a string that replaces the JSON)."""
    import onnx

    proto = onnx.load(source)
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    if isinstance(edit, str):
        entry.value = edit
    else:
        values = json.loads(entry.value)
        edit(values)
        entry.value = json.dumps(values)
    onnx.save(proto, path)
    return path


def _set(**changes):
    """An edit that sets metadata fields; ``config__key`` sets a config value."""
    def edit(values):
        for key, value in changes.items():
            if key.startswith("config__"):
                values["config"][key[len("config__"):]] = value
            else:
                values[key] = value
    return edit


@pytest.mark.parametrize("part, edit, message", [
    # metadata that disagrees with the graph it rides on
    ("encoder", _set(config__image_size=128, input_shape=[4, 128, 128]),
     r"metadata says 'input' is \(batch, 4, 128, 128\) but the graph's 'input' is \(batch, 4, 32, 32\)"),
    ("decoder", _set(config__latent_dim=20, input_shape=[20], latent_quantiser={"lo": [-1.0] * 20, "hi": [1.0] * 20}),
     r"metadata says 'latent' is \(batch, 20\) but the graph's 'latent' is \(batch, 16\)"),
    ("decoder", _set(config__latent_dim=20, input_shape=[20]),  # the table still has the graph's 16 values
     r"latent quantiser table that is not lists 'lo' and 'hi' of latent_dim \(20\) values each"),
    ("encoder", _set(config__mode="rgb", input_shape=[3, 32, 32]),
     r"metadata says 'input' is \(batch, 3, 32, 32\) but the graph's 'input' is \(batch, 4, 32, 32\)"),
    ("decoder", _set(config__mode="rgb"),
     r"metadata says 'recon' is \(batch, 3, 32, 32\) but the graph's 'recon' is \(batch, 5, 32, 32\)"),
    ("encoder", _set(inputs=["image"]),
     r"has inputs \['input'\] and outputs \['mu', 'logvar'\], but its metadata names inputs \['image'\]"),
    # values no model can have
    ("encoder", _set(config__image_size=64), r"input_shape \[4, 32, 32\], but its config makes the encoder input "
                                             r"\[4, 64, 64\]"),
    ("encoder", _set(config__image_size=0, input_shape=[4, 0, 0]), "image_size 0; expected a whole number > 0"),
    ("decoder", _set(config__latent_dim=0, input_shape=[0]), "latent_dim 0; expected a whole number > 0"),
    ("decoder", _set(config__latent_dim=2.5), "latent_dim 2.5; expected a whole number > 0"),
    ("decoder", _set(max_depth_m=0), "max_depth_m 0; expected a finite distance > 0 in metres"),
    ("decoder", _set(max_depth_m=-3.0), "max_depth_m -3.0; expected a finite distance > 0 in metres"),
    ("decoder", _set(max_depth_m=math.inf), "max_depth_m inf; expected a finite distance > 0 in metres"),
    ("decoder", _set(max_depth_m=math.nan), "max_depth_m nan; expected a finite distance > 0 in metres"),
    ("decoder", _set(max_depth_m="far"), "max_depth_m 'far'; expected a finite distance > 0 in metres"),
    ("encoder", _set(normalisation="imagenet"), "expects normalisation 'imagenet'; this build has 'unit_range_v1'"),
    ("encoder", _set(config__mode="grey"), "mode 'grey'; expected one of rgbd, rgb, rgb2rgbd"),
    ("encoder", _set(kind="gan"), "metadata for a 'gan' model's 'encoder' part"),
    ("encoder", _set(kind=["vae"]), r"metadata for a \['vae'\] model's 'encoder' part"),
    ("encoder", _set(part=["encoder"]), r"metadata for a 'vae' model's \['encoder'\] part"),
    ("encoder", _set(config__mode=["rgbd"]), r"mode \['rgbd'\]; expected one of"),
    ("encoder", _set(config="image_size=32"), "model config that is a str; expected a mapping"),
    ("encoder", _set(outputs=["mu"]), r"metadata outputs \['mu'\]; a encoder part has 2 named outputs"),
    ("encoder", _set(colour="bgr"), "incomplete model metadata"),
    ("encoder", "{not json", "carries model metadata that is not JSON"),
    ("encoder", "[1, 2]", "carries metadata of another format"),
])
def test_onnx_metadata_that_lies_about_the_graph_or_holds_impossible_values_fails_at_load(
        part, edit, message, exported, tmp_path):
    folder, _ = exported["conv_vae"]
    path = _with_metadata(folder / f"{part}.onnx", tmp_path / f"{part}.onnx", edit)
    with pytest.raises(BackendError, match=message) as error:
        open_backend(path, part, backend="onnxruntime", device="cpu")
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_depth_models_metadata_is_checked_against_its_graph_too(exported, tmp_path):
    folder, _ = exported["unet_depth"]
    path = _with_metadata(folder / "depth.onnx", tmp_path / "depth.onnx",
                          _set(config__input_width=64, input_shape=[3, 36, 64]))
    with pytest.raises(BackendError, match=r"'rgb' is \(batch, 3, 36, 64\) but the graph's 'rgb' is "
                                           r"\(batch, 3, 36, 48\)"):
        open_backend(path, "depth", backend="onnxruntime")
    assert open_backend(folder / "depth.onnx", "depth", backend="onnxruntime").info.image_size == (36, 48)


def test_a_graph_of_another_dtype_than_float32_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    info = ModelInfo("hand_built", "depth", "depth", {"input_height": 4, "input_width": 6}, ["rgb"], ["depth"],
                     [3, 4, 6], 8.0, "0" * 64)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["rgb"], ["depth"], axes=[1], keepdims=1)], "g",
        [helper.make_tensor_value_info("rgb", TensorProto.DOUBLE, ["batch", 3, 4, 6])],
        [helper.make_tensor_value_info("depth", TensorProto.DOUBLE, ["batch", 1, 4, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what the installed ONNX Runtime reads
    helper.set_model_props(model, {METADATA_KEY: info.to_json()})
    onnx.save(model, tmp_path / "depth.onnx")
    with pytest.raises(BackendError, match="has 'rgb' of type tensor\\(double\\); its metadata and the nodes "
                                           "expect tensor\\(float\\)"):
        open_backend(tmp_path / "depth.onnx", "depth", backend="onnxruntime")


def test_the_metadata_mode_table_is_the_models_one():
    from rgbd_vae_ros.models import MODES

    assert MODE_CHANNELS == MODES


def _checkpoint_asking_for(small_checkpoints, tmp_path, **changes):
    payload = torch.load(small_checkpoints["conv_vae"], weights_only=True)
    for key, value in changes.items():
        if key == "max_depth_m":
            payload["config"] = {"train": {"max_depth_m": value}}
        else:
            payload["model_config"][key] = value
    path = tmp_path / "conv_vae.pt"
    torch.save(payload, path)
    return path


def test_a_small_checkpoint_whose_config_asks_for_a_huge_latent_fails_before_allocating(small_checkpoints, tmp_path):
    path = _checkpoint_asking_for(small_checkpoints, tmp_path, latent_dim=2_000_000)
    assert path.stat().st_size < 5_000_000
    with pytest.raises(BackendError, match=r"do not fit model 'conv_vae': its config asks for '\S+' "
                                           r"\(2000000, 512\), the file holds \(16, 512\)") as error:
        open_backend(path, "encoder", backend="torch")
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_loading_the_huge_latent_checkpoint_keeps_peak_memory_low(small_checkpoints, tmp_path):
    # Built for real, the config's encoder and decoder would need 2e6 x 512 floats each (> 8 GB);
    # the process that refuses the file stays far below that.
    path = _checkpoint_asking_for(small_checkpoints, tmp_path, latent_dim=2_000_000)
    script = """
import resource, sys
from rgbd_vae_ros.inference import BackendError, open_backend
try:
    open_backend(sys.argv[1], "decoder", backend="torch")
except BackendError as exc:
    print("refused:", exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # MiB (ru_maxrss is KiB on Linux)
"""
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    refused, peak_mib = done.stdout.strip().splitlines()
    assert refused.startswith("refused:") and "do not fit model 'conv_vae'" in refused
    assert int(peak_mib) < 2048


@pytest.mark.parametrize("max_depth_m, shown", [(0.0, "0.0"), (-1.0, "-1.0"), (math.inf, "inf")])
def test_a_checkpoint_trained_with_an_impossible_max_depth_is_refused(max_depth_m, shown, small_checkpoints, tmp_path):
    path = _checkpoint_asking_for(small_checkpoints, tmp_path, max_depth_m=max_depth_m)
    with pytest.raises(BackendError, match=f"max_depth_m {shown}; expected a finite distance > 0 in metres"):
        open_backend(path, "decoder", backend="torch")


def test_an_rgbd_decoder_exported_before_the_validity_channel_is_refused_with_what_to_do(exported, tmp_path):
    """A decoder graph of four channels (RGB-D, no validity) under today's metadata: one sentence that
    says to train and export again, not only that the shapes differ."""
    import onnx

    folder, _ = exported["conv_vae"]
    older = torch.nn.Sequential(torch.nn.Linear(16, 4 * 32 * 32), torch.nn.Tanh(), torch.nn.Unflatten(1, (4, 32, 32)))
    path = tmp_path / "decoder.onnx"
    torch.onnx.export(older, (torch.zeros(1, 16),), str(path), input_names=["latent"], output_names=["recon"],
                      dynamic_axes={"latent": {0: "batch"}, "recon": {0: "batch"}}, dynamo=False)
    proto = onnx.load(path)
    metadata = next(p for p in onnx.load(folder / "decoder.onnx").metadata_props if p.key == METADATA_KEY)
    proto.metadata_props.add(key=METADATA_KEY, value=metadata.value)
    onnx.save(proto, path)
    with pytest.raises(BackendError, match=r"graph's 'recon' is \(batch, 4, 32, 32\); it decodes no depth "
                                           r"validity, as exports before that channel did: train the VAE again"):
        open_backend(path, "decoder", "onnxruntime", "cpu")
