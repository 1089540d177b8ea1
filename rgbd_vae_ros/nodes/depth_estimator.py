"""``depth_estimator``: RGB -> metric depth (SPEC §4.1, §4.2)."""

from __future__ import annotations

from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import image_msg_to_rgb

from .base import PerceptionNode, run_node
from .handlers import DepthHandler


class DepthEstimatorNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("depth_estimator", **kwargs)

    def make_handlers(self) -> list:
        return [DepthHandler(self)]

    def make_subscriptions(self) -> list:
        return [self.create_subscription(Image, "image", self.submit, self.input_qos()),
                self.camera_info_subscription()]

    def process(self, msg):
        self.handlers[0].handle(self, image_msg_to_rgb(msg), msg.header, self.camera_info)
        return msg.header.stamp


def main(args=None) -> int:
    return run_node(DepthEstimatorNode, args)
