"""Run as a separate process by test_conversion_ros.py: receive one Image per topic, save arrays.

usage: image_receiver_process.py OUT.npz TIMEOUT_S TOPIC...
Exits 0 once every topic delivered a message (arrays saved under the name after "/image_"), 1 on timeout.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import image_to_numpy


def main() -> int:
    out_path, timeout_s, topics = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    rclpy.init()
    node = rclpy.create_node("image_receiver")
    received: dict[str, np.ndarray] = {}

    def on_image(topic: str, msg: Image) -> None:
        received.setdefault(topic.rsplit("/image_", 1)[-1], image_to_numpy(msg, copy=True))

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    subs = [node.create_subscription(Image, t, lambda m, t=t: on_image(t, m), qos) for t in topics]
    deadline = time.monotonic() + timeout_s
    while len(received) < len(topics) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    np.savez(out_path, **received)
    del subs
    node.destroy_node()
    rclpy.shutdown()
    return 0 if len(received) == len(topics) else 1


if __name__ == "__main__":
    sys.exit(main())
