"""``rgbd_pipeline``: RGB (+ optional depth) -> estimated depth -> latent -> decoded RGB-D in one
process, publishing everything the three single nodes publish (SPEC §4.1). Measured depth, when
a depth frame lies within ``sync_slop`` of the image, is what gets encoded; otherwise the estimate."""

from __future__ import annotations

from collections import deque

from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import depth_msg_to_m, image_msg_to_rgb

from .base import PerceptionNode, run_node, stamp_s
from .handlers import DecodeHandler, DepthHandler, EncodeHandler


class RgbdPipelineNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("rgbd_pipeline", **kwargs)
        self.recent_depth: deque = deque(maxlen=10)

    def make_handlers(self) -> list:
        return [DepthHandler(self), EncodeHandler(self), DecodeHandler(self)]

    def make_subscriptions(self) -> list:
        subscriptions = [self.create_subscription(Image, "image", self.submit, self.input_qos()),
                         self.camera_info_subscription()]
        if self.param("use_depth"):
            subscriptions.append(self.create_subscription(Image, "depth", lambda m: self.recent_depth.append(m),
                                                          self.input_qos()))
        return subscriptions

    def _measured_depth(self, image):
        stamp = stamp_s(image)
        candidates = [m for m in list(self.recent_depth) if abs(stamp_s(m) - stamp) <= self.param("sync_slop")]
        if not candidates:
            return None
        return depth_msg_to_m(min(candidates, key=lambda m: abs(stamp_s(m) - stamp)))

    def process(self, msg):
        depth, encode, decode = self.handlers
        rgb_u8 = image_msg_to_rgb(msg)
        estimated_m = depth.handle(self, rgb_u8, msg.header, self.camera_info)
        measured_m = self._measured_depth(msg)
        mu = encode.handle(self, rgb_u8, estimated_m if measured_m is None else measured_m, msg.header)
        decode.handle(self, mu, msg.header)
        return msg.header.stamp


def main(args=None) -> int:
    return run_node(RgbdPipelineNode, args)
