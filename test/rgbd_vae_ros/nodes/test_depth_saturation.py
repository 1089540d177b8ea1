"""Depth at the top of a model's range (SPEC §4.2: never clamped into range): an output of max depth
says only "this far or farther" (the log head clamps there, a tanh saturates there), so the stage
leaves those pixels without an estimate and the nodes count them in /diagnostics.

The graph written here has a known output: depth = 2 x the red channel in [-1, 1], so the pixels at or
beyond the top of the range follow from the test image alone."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.inference.metadata import METADATA_KEY, ModelInfo
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_ros.nodes.processors import DepthEstimator
from rgbd_vae_ros.stages import DepthStage

HEIGHT, WIDTH, MAX_DEPTH_M = 36, 48, 8.0


def ramp_graph(path):
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype=TensorProto.INT64):
        return helper.make_tensor(name, dtype, [len(values)], values)

    nodes = [helper.make_node("Slice", ["rgb", "start", "end", "axis"], ["red"]),
             helper.make_node("Mul", ["red", "two"], ["depth"])]
    graph = helper.make_graph(
        nodes, "saturation_test", [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["batch", 1, HEIGHT, WIDTH])],
        initializer=[const("start", [0]), const("end", [1]), const("axis", [1]), const("two", [2.0], TensorProto.FLOAT)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    info = ModelInfo("unet_depth", "depth", "depth", {"input_height": HEIGHT, "input_width": WIDTH}, ["rgb"], ["depth"],
                     [3, HEIGHT, WIDTH], MAX_DEPTH_M, "cd" * 32)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    onnx.save(proto, str(path))
    return path


def red_ramp() -> np.ndarray:
    rgb = np.full((HEIGHT, WIDTH, 3), 90, dtype=np.uint8)
    rgb[..., 0] = np.linspace(0, 255, WIDTH).round().astype(np.uint8)[None, :]
    return rgb


def test_depth_at_the_top_of_the_range_is_no_reading_and_counted(tmp_path):
    model = ramp_graph(tmp_path / "depth.onnx")
    rgb = red_ramp()
    unit = 2 * (rgb[..., 0].astype(np.float32) / 127.5 - 1)
    top = unit >= 1  # depth 2R: max depth or beyond where red >= 191.25
    assert 0 < top.sum() < top.size
    stage = DepthStage.open(model, "onnxruntime", "cpu")
    try:
        depth_m, _, saturated = stage.estimate(rgb)
    finally:
        stage.close()
    assert saturated == top.sum()
    assert np.isnan(depth_m[top]).all()  # not MAX_DEPTH_M: that would be a clamped value published as valid
    below = (unit < 0.95) & (unit > -1)  # (the column next to the top ones takes a NaN into its bilinear sample)
    np.testing.assert_allclose(depth_m[below], (unit[below] + 1) * MAX_DEPTH_M / 2, rtol=1e-5)
    values = {**defaults(), "model": str(model), "backend": "onnxruntime", "device": "cpu", "max_depth": 100.0}
    processor = DepthEstimator(values.__getitem__)  # a max_depth parameter above the model's: not what hides it
    try:
        header = Header(frame_id="camera_rgb")
        for _ in range(2):
            out = dict(processor(Frame(image=numpy_to_image(rgb, "rgb8", header))))
            published = image_to_numpy(out["depth/image"])
            assert np.isnan(published[top]).all() and np.isfinite(published[below]).all()
        assert processor.counts["depth_saturated_pixels"] == 2 * top.sum()  # since configure
        assert "this far or farther" in processor.reasons["depth_saturated_pixels"]
    finally:
        processor.close()


@pytest.mark.slow
def test_a_log_head_that_guesses_beyond_max_depth_publishes_no_depth_there(small_configs, tmp_path):
    import math

    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_training.export import export_checkpoint

    torch.manual_seed(0)
    model = build_model("unet_depth", {**small_configs["unet_depth"], "head": "log"}).eval()
    with torch.no_grad():
        model.scale.bias.fill_(math.log(2.0))  # twice max depth everywhere: clamped to max depth in the graph
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": MAX_DEPTH_M}}), tmp_path / "log.pt")
    export_checkpoint(tmp_path / "log.pt", tmp_path / "export")
    stage = DepthStage.open(tmp_path / "export" / "depth.onnx", "onnxruntime", "cpu")
    try:
        depth_m, _, saturated = stage.estimate(red_ramp())
    finally:
        stage.close()
    assert saturated == stage.height * stage.width and np.isnan(depth_m).all()
