"""The validity mask from model to topic (SPEC §4.2, §4.5): an ``mff_depth`` export carries the mask
as its second output, every backend returns it, the depth stage gives it with the depth, and
``depth_estimator`` / ``rgbd_pipeline`` publish pixels below ``mask_threshold`` as no reading, count
the share masked, and publish ``depth/mask`` (mono8) while subscribed.

Most tests run a small ONNX graph written here whose mask is known exactly: depth = max_depth / 2
everywhere, mask = the red channel / 255 (as a probability, or as logits), so which pixels must be
masked follows from the test image alone."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.inference import BackendError, open_backend
from rgbd_vae_ros.inference.metadata import METADATA_KEY, ModelInfo
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_ros.nodes.processors import DepthEstimator, Pipeline
from rgbd_vae_ros.stages import DepthStage

HEIGHT, WIDTH, MAX_DEPTH_M = 48, 64, 8.0


def mask_graph(path, kind="probability", mask_output="mask", outputs=("depth", "mask"), logit_gain=8.0):
    """A depth model whose mask is the red channel: probability (R + 1) / 2 with R in [-1, 1] (= red / 255),
    or logits gain * R (sigmoid 0.5 at red 127.5); depth 0 in [-1, 1], i.e. max_depth / 2 metres."""
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype=TensorProto.INT64):
        return helper.make_tensor(name, dtype, [len(values)], values)

    nodes = [helper.make_node("Slice", ["rgb", "start", "end", "axis"], ["red"]),  # (B, 1, H, W) in [-1, 1]
             helper.make_node("Mul", ["red", "zero"], ["depth"])]
    if kind == "probability":
        nodes += [helper.make_node("Mul", ["red", "half"], ["half_red"]),
                  helper.make_node("Add", ["half_red", "half"], [outputs[-1]])]
    else:
        nodes += [helper.make_node("Mul", ["red", "gain"], [outputs[-1]])]
    shape = ["batch", 1, HEIGHT, WIDTH]
    graph = helper.make_graph(
        nodes, "mask_test", [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in outputs],
        initializer=[const("start", [0]), const("end", [1]), const("axis", [1]),
                     const("zero", [0.0], TensorProto.FLOAT), const("half", [0.5], TensorProto.FLOAT),
                     const("gain", [logit_gain], TensorProto.FLOAT)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    info = ModelInfo("mff_depth", "depth", "depth", {"input_height": HEIGHT, "input_width": WIDTH, "mask_mode": "head"},
                     ["rgb"], list(outputs), [3, HEIGHT, WIDTH], MAX_DEPTH_M, "ab" * 32,
                     mask={"output": mask_output, "kind": kind})
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def mask_model(tmp_path_factory):
    return mask_graph(tmp_path_factory.mktemp("mask_model") / "depth.onnx")


def red_ramp(height=HEIGHT, width=WIDTH) -> np.ndarray:
    """An image whose red channel rises from 0 to 255 across the columns (green, blue constant)."""
    rgb = np.full((height, width, 3), 90, dtype=np.uint8)
    rgb[..., 0] = np.linspace(0, 255, width).round().astype(np.uint8)[None, :]
    return rgb


def params(model, **values):
    merged = {**defaults(), "model": str(model), "backend": "onnxruntime", "device": "cpu", "max_depth": 10.0,
              **values}
    return merged.__getitem__


def frame_of(rgb, sec=42):
    header = Header(frame_id="camera_rgb")
    header.stamp.sec = sec
    return Frame(image=numpy_to_image(rgb, "rgb8", header))


def test_the_stage_gives_the_mask_with_the_depth_and_plain_callers_get_depth_alone(mask_model):
    stage = DepthStage.open(mask_model, "onnxruntime", "cpu")
    assert stage.has_mask and stage.info.mask_output == "mask"
    rgb = red_ramp()
    depth_m, mask, _ = stage.estimate(rgb)
    assert depth_m.shape == mask.shape == (HEIGHT, WIDTH) and mask.dtype == np.float32
    np.testing.assert_allclose(depth_m, MAX_DEPTH_M / 2, atol=1e-5)
    np.testing.assert_allclose(mask, rgb[..., 0] / 255.0, atol=1e-5)
    np.testing.assert_array_equal(stage(rgb), depth_m)  # the plain call: depth only, the mask not applied
    # at another image size the mask follows the image, as the depth does
    depth_big, mask_big, _ = stage.estimate(red_ramp(HEIGHT * 2, WIDTH * 2))
    assert depth_big.shape == mask_big.shape == (HEIGHT * 2, WIDTH * 2)
    assert mask_big[:, :10].max() < 0.2 and mask_big[:, -10:].min() > 0.8


@pytest.mark.slow
def test_a_model_without_a_mask_has_no_mask_and_no_mask_topic(exported):
    stage = DepthStage.open(exported["fast_depth"][0], "onnxruntime", "cpu")
    assert not stage.has_mask and stage.estimate(red_ramp()).mask is None
    stage.close()
    processor = DepthEstimator(params(exported["fast_depth"][0]))
    try:
        assert "depth/mask" not in processor.outputs
        topics = [topic for topic, _ in processor(frame_of(red_ramp()))]
        assert "depth/mask" not in topics and "mask_masked_share" not in processor.counts
    finally:
        processor.close()


def test_logit_masks_are_turned_into_probabilities(tmp_path):
    stage = DepthStage.open(mask_graph(tmp_path / "logits.onnx", kind="logits"), "onnxruntime", "cpu")
    rgb = red_ramp()
    _, mask, _ = stage.estimate(rgb)
    red = rgb[..., 0] / 127.5 - 1.0
    np.testing.assert_allclose(mask, 1.0 / (1.0 + np.exp(-8.0 * red)), atol=1e-5)


def test_mask_metadata_that_disagrees_with_the_graph_is_refused(tmp_path):
    # the metadata names a mask output the graph does not have under that name
    bad = mask_graph(tmp_path / "renamed.onnx", mask_output="validity")
    with pytest.raises(BackendError, match="mask metadata .*'validity'.*second output"):
        open_backend(bad, "depth", "onnxruntime", "cpu")
    # a kind nobody knows
    info = ModelInfo("mff_depth", "depth", "depth", {"input_height": HEIGHT, "input_width": WIDTH}, ["rgb"],
                     ["depth", "mask"], [3, HEIGHT, WIDTH], mask={"output": "mask", "kind": "percent"})
    with pytest.raises(BackendError, match="'probability' or 'logits'"):
        info.check("'x.onnx'")
    # two outputs and no mask metadata: a depth part has one output unless it says which is the mask
    info.mask = None
    with pytest.raises(BackendError, match="a depth part has 1 named outputs"):
        info.check("'x.onnx'")


def test_pixels_below_the_threshold_are_no_reading_and_the_mask_topic_says_which(mask_model):
    threshold = {"value": 0.5}
    values = {**defaults(), "model": str(mask_model), "backend": "onnxruntime", "device": "cpu", "max_depth": 10.0}
    processor = DepthEstimator(lambda name: threshold["value"] if name == "mask_threshold" else values[name])
    try:
        assert processor.outputs["depth/mask"] is Image
        rgb = red_ramp()
        trusted = rgb[..., 0] / 255.0 >= 0.5
        out = dict(processor(frame_of(rgb)))
        depth = image_to_numpy(out["depth/image"])
        assert np.isnan(depth[~trusted]).all() and np.isfinite(depth[trusted]).all()
        mask_msg = out["depth/mask"]
        assert (mask_msg.encoding, mask_msg.height, mask_msg.width) == ("mono8", HEIGHT, WIDTH)
        assert (mask_msg.header.frame_id, mask_msg.header.stamp.sec) == ("camera_rgb", 42)
        np.testing.assert_array_equal(image_to_numpy(mask_msg), np.where(trusted, 255, 0))
        share = 1 - trusted.mean()
        assert processor.counts["mask_masked_share"] == pytest.approx(share, abs=1e-4)
        # a new threshold applies to the next frame; the share counted is over every frame since
        threshold["value"] = 0.9
        out = dict(processor(frame_of(rgb)))
        strict = rgb[..., 0] / 255.0 >= 0.9
        np.testing.assert_array_equal(np.isfinite(image_to_numpy(out["depth/image"])), strict)
        assert processor.counts["mask_pixels_masked"] == (~trusted).sum() + (~strict).sum()
        assert processor.counts["mask_masked_share"] == pytest.approx(((~trusted).sum() + (~strict).sum())
                                                                      / (2 * trusted.size), abs=1e-4)
        # 16UC1 marks the same pixels with 0
        values["depth_encoding"] = "16UC1"
        out = dict(processor(frame_of(rgb), wanted=lambda topic: topic != "depth/mask"))
        np.testing.assert_array_equal(image_to_numpy(out["depth/image"]) > 0, strict)
        assert "depth/mask" not in out  # nobody reads it: not computed
    finally:
        processor.close()


@pytest.mark.slow
def test_an_exported_mff_depth_carries_its_mask_probability_on_every_backend(exported, small_checkpoints):
    folder, rows = exported["mff_depth"]
    assert rows[0]["outputs"] == ["depth", "mask"]
    onnx_backend = open_backend(folder / "depth.onnx", "depth", "onnxruntime", "cpu")
    torch_backend = open_backend(small_checkpoints["mff_depth"], "depth", "torch", "cpu")
    for backend in (onnx_backend, torch_backend):
        assert backend.info.outputs == ["depth", "mask"]
        assert backend.info.mask == {"output": "mask", "kind": "probability"}
    x = np.random.default_rng(3).uniform(-1, 1, (2, 3, 48, 64)).astype(np.float32)
    got, expected = onnx_backend.run({"rgb": x}), torch_backend.run({"rgb": x})
    assert got["mask"].shape == (2, 1, 48, 64) and got["mask"].min() >= 0 and got["mask"].max() <= 1
    np.testing.assert_allclose(got["mask"], expected["mask"], atol=1e-4)
    np.testing.assert_allclose(got["depth"], expected["depth"], atol=1e-4)
    # the probability is the sigmoid of the model's own logits
    import torch

    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(small_checkpoints["mff_depth"])).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))["mask"].numpy()
    np.testing.assert_allclose(got["mask"], 1 / (1 + np.exp(-logits)), atol=1e-4)


@pytest.mark.slow
def test_the_pipeline_masks_its_depth_too(mask_model, exported, tmp_path):
    import shutil

    for part in ("encoder", "decoder"):
        shutil.copy(exported["conv_vae"][0] / f"{part}.onnx", tmp_path)
    shutil.copy(mask_model, tmp_path / "depth.onnx")
    processor = Pipeline(params(tmp_path, latent_codec="f32", use_depth=False))
    try:
        assert "depth/mask" in processor.outputs
        rgb = red_ramp()
        out = dict(processor(frame_of(rgb)))
        trusted = rgb[..., 0] / 255.0 >= 0.5
        np.testing.assert_array_equal(np.isfinite(image_to_numpy(out["depth/image"])), trusted)
        np.testing.assert_array_equal(image_to_numpy(out["depth/mask"]) == 255, trusted)
        assert "latent" in out and processor.counts["mask_masked_share"] > 0
    finally:
        processor.close()


@pytest.mark.slow
def test_depth_estimator_node_publishes_the_mask_while_subscribed_and_counts_it(harness, mask_model):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(mask_model)), Parameter("backend", value="onnxruntime"),
        Parameter("device", value="cpu")]))
    depth = harness.listen(Image, "depth/image")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    publisher = harness.publisher(Image, "image")
    rgb = red_ramp()
    trusted = rgb[..., 0] / 255.0 >= 0.5
    assert harness.wait_for(lambda: node.processor is not None and "depth/mask" in node.output_publishers)
    def stamped(sec):
        header = Header(frame_id="cam")
        header.stamp.sec = sec
        return numpy_to_image(rgb, "rgb8", header)

    def with_stamp(messages, sec):
        return next((m for m in messages if m.header.stamp.sec == sec), None)

    # nobody reads depth/mask: depth comes, masked, and the mask is not computed
    assert harness.send(publisher, stamped(1), lambda: with_stamp(depth, 1))
    np.testing.assert_array_equal(np.isfinite(image_to_numpy(with_stamp(depth, 1))), trusted)
    masks = harness.listen(Image, "depth/mask")
    assert harness.wait_for(lambda: node._wanted("depth/mask"))
    assert harness.send(publisher, stamped(2), lambda: with_stamp(masks, 2))
    mask = with_stamp(masks, 2)
    assert mask.encoding == "mono8" and mask.header.frame_id == "cam"
    np.testing.assert_array_equal(image_to_numpy(mask) == 255, trusted)
    # a threshold change takes effect at once, without a reload (each frame its own stamp: a copy of
    # an earlier one re-sent on a slow machine is never taken for this one's answer)
    model_before = node.processor
    assert node.set_parameters([Parameter("mask_threshold", value=0.25)])[0].successful
    loose = rgb[..., 0] / 255.0 >= 0.25
    assert harness.send(publisher, stamped(3), lambda: with_stamp(masks, 3))
    np.testing.assert_array_equal(image_to_numpy(with_stamp(masks, 3)) == 255, loose)
    assert node.processor is model_before

    def share_reported():
        for array in diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if "mask_masked_share" in values and float(values["mask_masked_share"]) > 0:
                    return True
        return False

    assert harness.wait_for(share_reported)


@pytest.mark.slow
def test_bag_process_writes_the_mask_of_a_mask_model(sequence_bag, mask_model, exported, tmp_path):
    from rgbd_vae_ros.bags import BagReader
    from rgbd_vae_training.bag.process import process_bag

    result = process_bag(sequence_bag, tmp_path / "masked", mask_model, backend="onnxruntime",
                         executable="depth_estimator")
    assert result.frames_out == result.frames_in > 0 and result.counts["mask_masked_share"] > 0
    with BagReader(tmp_path / "masked") as reader:
        assert "/rgbd_vae/depth/mask" in reader.topics
        depths = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec: m
                  for _, m in reader.decoded("/rgbd_vae/depth/image")}
        masks = list(reader.decoded("/rgbd_vae/depth/mask"))
    assert len(masks) == result.frames_out
    for _, mask in masks:
        depth = depths[mask.header.stamp.sec * 10**9 + mask.header.stamp.nanosec]
        assert (mask.encoding, mask.height, mask.width) == ("mono8", depth.height, depth.width)
        # no depth where the mask is 0 (the range check may remove more where it is 255)
        assert not np.isfinite(image_to_numpy(depth)[image_to_numpy(mask) == 0]).any()
    # a model without a mask: no depth/mask topic
    plain = process_bag(sequence_bag, tmp_path / "plain", exported["fast_depth"][0], backend="onnxruntime",
                        executable="depth_estimator")
    with BagReader(tmp_path / "plain") as reader:
        assert "/rgbd_vae/depth/mask" not in reader.topics and "mask_masked_share" not in plain.counts


@pytest.mark.slow
def test_switching_an_active_node_to_a_mask_model_publishes_its_mask(harness, mask_model, exported):
    from rclpy.parameter import Parameter

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(exported["fast_depth"][0])), Parameter("backend", value="onnxruntime"),
        Parameter("device", value="cpu")]))
    assert harness.wait_for(lambda: node._active)
    assert "depth/mask" not in node.output_publishers
    assert node.set_parameters([Parameter("model", value=str(mask_model))])[0].successful
    masks = harness.listen(Image, "depth/mask")
    rgb = red_ramp()
    assert harness.send(harness.publisher(Image, "image"), numpy_to_image(rgb, "rgb8", Header(frame_id="cam")),
                        lambda: masks)
    np.testing.assert_array_equal(image_to_numpy(masks[-1]) == 255, rgb[..., 0] / 255.0 >= 0.5)
    assert node.processor.counts["mask_masked_share"] > 0
