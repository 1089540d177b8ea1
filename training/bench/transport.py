"""``rgbd-vae bench transport``: frames lost between a camera in another process and a node (SPEC §4).

A publisher process sends 640x480 rgb8 frames at 30 Hz with reliable or best-effort QoS, as camera
drivers do; ``depth_estimator`` (a small model that keeps up) receives them with its ``reliable_input``
setting. Lost = sent - received by the node's subscription (its ``frames_in``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .timing import rows_table

# (publisher reliability, the node's reliable_input, image_transport)
CASES = (("reliable", "auto", "raw"), ("best_effort", "auto", "raw"), ("reliable", "false", "raw"),
         ("best_effort", "auto", "compressed"))


def _small_depth_model(folder: Path) -> Path:
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    from ..export import export_checkpoint
    from ..train.config import load_config

    torch.manual_seed(0)
    config = load_config("tiny_depth")
    model = build_model(config.model_name, config.model).eval()
    torch.save(checkpoint_payload(model), folder / "tiny_depth.pt")
    export_checkpoint(folder / "tiny_depth.pt", folder)
    return folder / "depth.onnx"


def _wait_for_publisher(context, topic: str, camera: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Until this process sees the camera's publisher: auto chooses its QoS from what it finds."""
    import rclpy

    probe = rclpy.create_node("bench_transport_probe", context=context)
    try:
        deadline = time.monotonic() + timeout_s
        while not probe.get_publishers_info_by_topic(topic):
            if camera.poll() is not None:
                last = camera.stderr.read().strip().splitlines()[-1:] if camera.stderr else []
                raise RuntimeError(f"the camera process exited ({camera.returncode}) before publishing {topic}: "
                                   f"{last[0] if last else 'no message'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the camera process did not publish {topic} within {timeout_s:g} s")
            time.sleep(0.05)
    finally:
        probe.destroy_node()


def bench_transport(frames: int = 150, rate_hz: float = 30.0, width: int = 640, height: int = 480) -> list[dict]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _small_depth_model(Path(tmp))
        for publisher_qos, setting, transport in CASES:
            context = Context()
            rclpy.init(context=context)
            publisher = subprocess.Popen([sys.executable, "-m", "rgbd_vae_training.bench.transport", publisher_qos,
                                          transport, str(frames), str(rate_hz), str(width), str(height)],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                _wait_for_publisher(context, "/image/compressed" if transport == "compressed" else "/image", publisher)
                node = DepthEstimatorNode(context=context, parameter_overrides=[
                    Parameter("model", value=str(model)), Parameter("reliable_input", value=setting),
                    Parameter("image_transport", value=transport), Parameter("backend", value="onnxruntime")])
                executor = SingleThreadedExecutor(context=context)  # as the executable spins it
                executor.add_node(node)
                spinner = threading.Thread(target=executor.spin, daemon=True)
                spinner.start()
                out, err = publisher.communicate(timeout=120 + frames / rate_hz)
                if publisher.returncode != 0:
                    raise RuntimeError(f"the publisher process failed: {err.strip().splitlines()[-1:]}")
                time.sleep(1.0)
                subscription = next(iter(node._inputs.values()))
                rows.append({"publisher": publisher_qos, "reliable_input": setting, "transport": transport,
                             "subscription": subscription.qos_profile.reliability.name.lower(),
                             "sent": frames, "received": node.counters.frames_in,
                             "lost_percent": 100.0 * (frames - node.counters.frames_in) / frames,
                             "answered": node.counters.frames_out, "dropped_by_node": node.counters.dropped
                             + node._slot.dropped})
                executor.shutdown(timeout_sec=2.0)
                node._stop_work()
                node.destroy_node()
            finally:
                if publisher.poll() is None:
                    publisher.kill()
                rclpy.try_shutdown(context=context)
    return rows


COLUMNS = [("publisher", "publisher", ""), ("reliable_input", "reliable_input", ""), ("transport", "transport", ""),
           ("subscription", "subscription", ""), ("sent", "sent", "d"), ("received", "received", "d"),
           ("lost %", "lost_percent", ".1f"), ("answered", "answered", "d")]


def format_rows(rows: list[dict]) -> str:
    return rows_table(rows, COLUMNS)


def _publish(argv: list[str]) -> int:
    """The camera: wait for a subscriber, then send ``frames`` frames at ``rate_hz``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("reliability", choices=("reliable", "best_effort"))
    parser.add_argument("transport", choices=("raw", "compressed"))
    for name, kind in (("frames", int), ("rate_hz", float), ("width", int), ("height", int)):
        parser.add_argument(name, type=kind)
    args = parser.parse_args(argv)
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    from rgbd_vae_ros.conversion import numpy_to_image, rgb_to_compressed_msg

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    reliability = ReliabilityPolicy.RELIABLE if args.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(depth=5, reliability=reliability)
    compressed = args.transport == "compressed"
    pub = node.create_publisher(CompressedImage, "image/compressed", qos) if compressed else \
        node.create_publisher(Image, "image", qos)
    # A smooth picture with sensor noise: what a camera sees compresses like this, pure noise does not.
    rows, cols = np.mgrid[0:args.height, 0:args.width]
    smooth = np.stack([cols * 255 // args.width, rows * 255 // args.height, (rows + cols) % 256], axis=-1)
    noise = np.random.default_rng(0).integers(-8, 9, smooth.shape)
    pixels = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    deadline = time.monotonic() + 60
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let the match settle both ways
    start = time.monotonic()
    for i in range(args.frames):
        msg = rgb_to_compressed_msg(pixels, "jpeg") if compressed else numpy_to_image(pixels, "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(max(0.0, start + (i + 1) / args.rate_hz - time.monotonic()))
    time.sleep(1.0)  # reliable delivery of the last frames
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(_publish(sys.argv[1:]))
