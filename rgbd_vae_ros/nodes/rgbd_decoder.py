"""``rgbd_decoder``: latent code -> RGB + depth (SPEC §4.1, §4.2)."""

from __future__ import annotations

from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import latent_from_msg

from .base import PerceptionNode, run_node
from .handlers import DecodeHandler


class RgbdDecoderNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("rgbd_decoder", **kwargs)

    def make_handlers(self) -> list:
        return [DecodeHandler(self)]

    def make_subscriptions(self) -> list:
        return [self.create_subscription(Image, "latent", self.submit, self.input_qos())]

    def process(self, msg):
        decoder = self.handlers[0]
        mu, _ = latent_from_msg(msg, decoder.stage.latent_dim)
        decoder.handle(self, mu, msg.header)
        return msg.header.stamp


def main(args=None) -> int:
    return run_node(RgbdDecoderNode, args)
