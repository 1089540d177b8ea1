"""``depth_estimator`` runs an exported ``fast_depth`` (ONNX Runtime) and its checkpoint (torch) with
real rclpy: depth in metres at the camera's size with the camera's header."""

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_depth_estimator_publishes_metres_from_fast_depth(harness, exported, small_checkpoints, backend):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    model = exported["fast_depth"][0] if backend == "onnxruntime" else small_checkpoints["fast_depth"]
    node = harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(model)), Parameter("backend", value=backend)]))
    depth = harness.listen(Image, "depth/image")
    header = Header(frame_id="camera_rgb")
    header.stamp.sec, header.stamp.nanosec = 1234, 5000
    pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert harness.send(harness.publisher(Image, "image"), numpy_to_image(pixels, "rgb8", header), lambda: depth)
    msg = depth[-1]
    assert (msg.encoding, msg.height, msg.width) == ("32FC1", 120, 160)
    assert (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec) == ("camera_rgb", 1234, 5000)
    values = image_to_numpy(msg)
    # the 64x32 (2:1) input sees image rows 20-99 of the 4:3 image (never stretched); the rows cut away have no estimate
    assert np.all(np.isfinite(values[20:100]) & (values[20:100] >= 0) & (values[20:100] <= 8.0))  # max_depth_m 8
    assert np.isnan(values[:20]).all() and np.isnan(values[100:]).all()
    described = node.processor.describe()
    assert described["backend"] == backend and described["model_depth"].endswith(("depth.onnx", "fast_depth.pt"))
    assert node.processor.depth.info.model_name == "fast_depth"
