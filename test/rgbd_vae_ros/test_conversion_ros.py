"""Images built by the conversion module cross real rclpy / Fast DDS between two processes intact."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image

RECEIVER = Path(__file__).with_name("image_receiver_process.py")
ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16",
             "8UC1", "8UC3", "8UC4", "16UC1", "32FC1", "64FC1"]


def _pixels(encoding: str, seed: int) -> np.ndarray:
    from rgbd_vae_ros.conversion import image_format

    fmt = image_format(encoding)
    rng = np.random.default_rng(seed)
    shape = (48, 64) if fmt.channels == 1 else (48, 64, fmt.channels)
    if fmt.dtype.kind == "f":
        pixels = rng.uniform(0.0, 10.0, shape).astype(fmt.dtype.newbyteorder("="))
        pixels[::7, ::5] = np.nan
        return pixels
    raw = rng.integers(0, 256, int(np.prod(shape)) * fmt.dtype.itemsize, dtype=np.uint8)
    return raw.view(fmt.dtype.newbyteorder("=")).reshape(shape)


@pytest.mark.slow
@pytest.mark.ros
def test_every_encoding_arrives_identical_in_another_process(rclpy_context, tmp_path):
    expected = {enc: _pixels(enc, seed) for seed, enc in enumerate(ENCODINGS)}
    out = tmp_path / "received.npz"
    topics = [f"/conversion_test/image_{enc}" for enc in ENCODINGS]
    receiver = subprocess.Popen([sys.executable, str(RECEIVER), str(out), "40", *topics],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    import rclpy

    node = rclpy.create_node("image_sender", context=rclpy_context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publishers = {enc: node.create_publisher(Image, f"/conversion_test/image_{enc}", qos) for enc in ENCODINGS}
    messages = {enc: numpy_to_image(expected[enc], enc) for enc in ENCODINGS}
    try:
        deadline = time.monotonic() + 45
        while receiver.poll() is None and time.monotonic() < deadline:
            for enc, publisher in publishers.items():
                publisher.publish(messages[enc])
            time.sleep(0.1)
    finally:
        node.destroy_node()
        if receiver.poll() is None:
            receiver.kill()
    output = receiver.communicate()[0].decode(errors="replace")
    assert receiver.returncode == 0, f"the receiver did not get every encoding:\n{output}"
    with np.load(out) as received:
        for enc in ENCODINGS:
            assert received[enc].dtype == expected[enc].dtype, enc
            assert received[enc].shape == expected[enc].shape, enc
            assert received[enc].tobytes() == expected[enc].tobytes(), enc


@pytest.mark.ros
def test_image_survives_an_in_process_round_trip_with_header(rclpy_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header

    node = rclpy.create_node("loopback", context=rclpy_context)
    got: list[Image] = []
    node.create_subscription(Image, "loopback/depth", got.append, 10)
    publisher = node.create_publisher(Image, "loopback/depth", 10)
    header = Header(frame_id="camera_depth_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    depth_m = _pixels("32FC1", 99)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        publisher.publish(numpy_to_image(depth_m, "32FC1", header))
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    node.destroy_node()
    assert got, "no message came back over DDS"
    assert got[0].header == header
    assert image_to_numpy(got[0]).tobytes() == depth_m.tobytes()
