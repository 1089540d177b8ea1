"""depth_estimator running a third-party model through its card (SPEC §5.1), real rclpy in process.

The model is built here with Depth-Anything-V2's public I/O (``pixel_values`` 1x3x518x518,
ImageNet-normalised RGB in; ``predicted_depth`` (1, 518, 518) relative inverse depth out) and
returns ``a * true inverse depth + b`` of a synthetic scene, a and b unknown to the node.
"""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image

from ..card_models import abs_rel, card_dict, ramp_scene, red_model, write_card_yaml

A, B = 2.7, -0.35  # the model's relative output is A * inverse depth + B


def _header(sec):
    h = Header(frame_id="camera_rgb")
    h.stamp.sec = sec
    return h


def _node(harness, model, **params):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    overrides = [Parameter(k, value=v) for k, v in {"model": str(model), **params}.items()]
    return harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=overrides))


@pytest.fixture
def da2_model(tmp_path):
    path = red_model(tmp_path / "depth_anything_v2_small.onnx", A, B)
    write_card_yaml(path, card_dict(size=(518, 518), resize="pad"))
    return path


def _value(diagnostics, key):
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.startswith("depth_estimator"):
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
    return None


@pytest.mark.slow
def test_measured_depth_makes_the_relative_model_metric_within_5_percent(harness, da2_model):
    node = _node(harness, da2_model)
    depth = harness.listen(Image, "depth/image")
    relative = harness.listen(Image, "depth/relative")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    image_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    rgb, truth_m = ramp_scene(240, 320, seed=4)
    measured = truth_m.copy()
    rng = np.random.default_rng(5)
    measured[rng.random(measured.shape) < 0.4] = np.nan  # holes
    wrong = rng.random(measured.shape) < 0.15  # and wrong readings
    measured[wrong] = rng.uniform(0.3, 8.0, wrong.sum()).astype(np.float32)
    measured_msg = numpy_to_image(measured, "32FC1", _header(7))
    # the measured depth again with each poll: one sent alone may reach a subscription being re-made
    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(7)),
                        lambda: (depth_pub.publish(measured_msg), any(m.header.stamp.sec == 7 for m in depth))[1])
    msg = next(m for m in depth if m.header.stamp.sec == 7)
    assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == ("32FC1", 240, 320, "camera_rgb")
    published_m = image_to_numpy(msg)
    assert np.isfinite(published_m).mean() > 0.99
    assert abs_rel(published_m, truth_m) < 0.05
    assert harness.wait_for(lambda: any(m.header.stamp.sec == 7 for m in relative))  # another topic: may lag
    assert next(m for m in relative if m.header.stamp.sec == 7).encoding == "32FC1"
    assert harness.wait_for(lambda: _value(diagnostics, "depth_fit_inliers") not in (None, "0"))
    assert 0.6 < float(_value(diagnostics, "depth_fit_inlier_share")) < 0.95  # the wrong readings are out
    assert node.processor.depth.describe()["output_kind"] == "relative_inverse"


@pytest.mark.slow
def test_without_measured_depth_only_the_relative_map_is_published(harness, da2_model):
    node = _node(harness, da2_model)
    depth = harness.listen(Image, "depth/image")
    relative = harness.listen(Image, "depth/relative")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    rgb, truth_m = ramp_scene(120, 160, seed=6)
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, numpy_to_image(rgb, "rgb8", _header(3)), lambda: relative)
    values = image_to_numpy(relative[0])
    assert values.shape == (120, 160) and relative[0].header.stamp.sec == 3
    # the model's own values: A * inverse depth + B, unitless, not metres
    np.testing.assert_allclose(values, A / truth_m + B, atol=0.02)
    assert harness.wait_for(lambda: int(_value(diagnostics, "depth_frames_without_fit") or 0) >= 1)
    # a later frame with measured depth does come out on depth/image; delivery on one topic is in
    # order, so had frame 3 been published there it would have arrived first
    depth_pub = harness.publisher(Image, "depth")
    measured_msg = numpy_to_image(truth_m, "32FC1", _header(4))
    assert harness.send(pub, numpy_to_image(rgb, "rgb8", _header(4)),
                        lambda: (depth_pub.publish(measured_msg), any(m.header.stamp.sec == 4 for m in depth))[1])
    assert [m.header.stamp.sec for m in depth if m.header.stamp.sec != 4] == []


@pytest.mark.slow
def test_a_card_that_disagrees_with_its_graph_fails_configure_in_one_sentence(harness, tmp_path):
    path = red_model(tmp_path / "dpt.onnx", height=384, width=384)
    write_card_yaml(path, card_dict(size=(518, 518)))
    node = _node(harness, path, autostart=False)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    reason = node._not_active
    assert reason.startswith("configure failed: the card of ") and "\n" not in reason
    assert "input.size [518, 518] but the graph's 'pixel_values' is (384, 384)" in reason
    write_card_yaml(path, card_dict(size=(384, 384)))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


@pytest.mark.slow
def test_switching_to_a_relative_model_while_active_pairs_the_depth_topic_from_then_on(harness, exported, da2_model):
    node = _node(harness, exported["unet_depth"][0])
    depth = harness.listen(Image, "depth/image")
    image_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    rgb, truth_m = ramp_scene(120, 160, seed=8)
    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(1)), lambda: depth)
    assert node.set_parameters([Parameter("model", value=str(da2_model))])[0].successful
    assert node.processor.inputs == ("image", "depth", "camera_info")
    measured_msg = numpy_to_image(truth_m, "32FC1", _header(2))
    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(2)),
                        lambda: (depth_pub.publish(measured_msg), any(m.header.stamp.sec == 2 for m in depth))[1])
    assert abs_rel(image_to_numpy(next(m for m in depth if m.header.stamp.sec == 2)), truth_m) < 0.05
    assert node.counters.rejected == 0


@pytest.mark.slow
def test_bag_process_fits_the_frames_with_measured_depth_and_gives_the_others_relative_only(da2_model, tmp_path):
    from rclpy.serialization import serialize_message

    from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_TOPIC, BagReader, write_bag
    from rgbd_vae_training.bag.process import process_bag

    rgb, truth_m = ramp_scene(96, 128, seed=9)
    with write_bag(tmp_path / "in") as writer:
        for sec in (1, 2, 3, 4):
            if sec != 4:  # the last frame has no measured depth
                writer.write_raw(DEPTH_TOPIC, "sensor_msgs/msg/Image", sec * 10**9,
                                 serialize_message(numpy_to_image(truth_m, "32FC1", _header(sec))))
            writer.write_raw(RGB_TOPIC, "sensor_msgs/msg/Image", sec * 10**9 + 1,
                             serialize_message(numpy_to_image(rgb, "rgb8", _header(sec))))
    result = process_bag(tmp_path / "in", tmp_path / "out", da2_model, executable="depth_estimator")
    assert (result.frames_out, sum(result.rejected.values())) == (4, 0)
    with BagReader(tmp_path / "out") as reader:
        depth = {m.header.stamp.sec: image_to_numpy(m) for _, m in reader.decoded("/rgbd_vae/depth/image")}
        relative = [m.header.stamp.sec for _, m in reader.decoded("/rgbd_vae/depth/relative")]
    assert sorted(depth) == [1, 2, 3] and relative == [1, 2, 3, 4]
    assert all(abs_rel(values, truth_m) < 0.05 for values in depth.values())


@pytest.mark.slow
def test_a_metric_card_follows_the_camera_focal_length_when_camera_info_comes(harness, tmp_path):
    from sensor_msgs.msg import CameraInfo

    path = red_model(tmp_path / "metric.onnx", a=0.0, b=2.0, height=60, width=80)  # 2 m wherever it looks
    write_card_yaml(path, card_dict(kind="metric", size=(60, 80), focal_length_px=50.0))
    node = _node(harness, path)
    depth = harness.listen(Image, "depth/image")
    image_pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    rgb, _ = ramp_scene(120, 160)
    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(1)), lambda: depth)
    np.testing.assert_allclose(image_to_numpy(depth[-1]), 2.0)  # no camera: the model's own scale
    # fx 400 px at 320x240 is 200 px at the 160x120 image and 100 px at the 80x60 input: twice the 50 px trained at
    camera = CameraInfo(header=_header(2), width=320, height=240, k=[400.0, 0, 160, 0, 400, 120, 0, 0, 1])

    def paired(m):  # the image may overtake the camera_info (another topic); both are sent again then
        return m.header.stamp.sec == 2 and image_to_numpy(m)[0, 0] > 3.0

    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(2)),
                        lambda: (info_pub.publish(camera), any(map(paired, depth)))[1])
    np.testing.assert_allclose(image_to_numpy(next(filter(paired, depth))), 4.0, rtol=1e-5)
    assert "depth/relative" not in node.output_publishers and "depth" not in node.processor.inputs


@pytest.mark.slow
def test_the_pipeline_with_a_relative_model_and_no_measured_depth_publishes_the_relative_map_and_no_latent(
        tmp_path, pipeline_models):
    """An RGB-D encoder needs metres; without a fit there are none, so no latent (counted), never a
    latent of unscaled values."""
    import shutil

    from rgbd_vae_ros.frames import Frame
    from rgbd_vae_ros.nodes.parameters import defaults
    from rgbd_vae_ros.nodes.processors import Pipeline

    folder = tmp_path / "models"
    folder.mkdir()
    write_card_yaml(red_model(folder / "depth.onnx", A, B, height=70, width=70), card_dict(size=(70, 70)))
    for part in ("encoder", "decoder"):
        shutil.copy(pipeline_models / f"{part}.onnx", folder)
    processor = Pipeline({**defaults(), "model": str(folder), "backend": "onnxruntime"}.__getitem__)
    try:
        assert processor.encoder.uses_depth
        rgb, _ = ramp_scene(60, 80)
        outputs = dict(processor(Frame(numpy_to_image(rgb, "rgb8", _header(3))), lambda topic: True))
        assert set(outputs) == {"depth/relative"}
        assert processor.counts["latent_skipped"] == 1 and "no measured depth" in processor.reasons["latent_skipped"]
    finally:
        processor.close()
