"""``depth_estimator``: RGB -> metric depth (SPEC §4.1, §4.2)."""

from __future__ import annotations

from sensor_msgs.msg import CameraInfo, Image

from rgbd_vae_ros.conversion import image_msg_to_rgb

from .base import PerceptionNode, run_node
from .handlers import DepthHandler


class DepthEstimatorNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("depth_estimator", **kwargs)
        self.camera_info = None

    def make_handlers(self) -> list:
        return [DepthHandler(self)]

    def make_subscriptions(self) -> list:
        return [self.create_subscription(Image, "image", self.submit, self.input_qos()),
                self.create_subscription(CameraInfo, "camera_info", self._keep_info, self.input_qos())]

    def _keep_info(self, msg) -> None:
        self.camera_info = msg

    def process(self, msg):
        self.handlers[0].handle(self, image_msg_to_rgb(msg), msg.header, self.camera_info)
        return msg.header.stamp


def main(args=None) -> int:
    return run_node(DepthEstimatorNode, args)
