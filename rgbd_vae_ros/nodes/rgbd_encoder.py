"""``rgbd_encoder``: RGB-D (or RGB only) -> latent code (SPEC §4.1-4.3)."""

from __future__ import annotations

from sensor_msgs.msg import Image

from rgbd_vae_ros.conversion import depth_msg_to_m, image_msg_to_rgb
from rgbd_vae_ros.sync import StampMatcher

from .base import PerceptionNode, run_node, stamp_s
from .handlers import EncodeHandler


class RgbdEncoderNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("rgbd_encoder", **kwargs)
        self.matcher: StampMatcher | None = None

    def make_handlers(self) -> list:
        return [EncodeHandler(self)]

    def wants_depth(self) -> bool:
        return bool(self.param("use_depth")) and self.handlers[0].stage.uses_depth

    def make_subscriptions(self) -> list:
        if not self.wants_depth():
            return [self.create_subscription(Image, "image", lambda m: self.submit((m, None)), self.input_qos())]
        self.matcher = StampMatcher(self.param("sync_slop"))
        return [self.create_subscription(Image, "image", lambda m: self._match(0, m), self.input_qos()),
                self.create_subscription(Image, "depth", lambda m: self._match(1, m), self.input_qos())]

    def _match(self, stream: int, msg) -> None:
        pair = self.matcher.add(stream, stamp_s(msg), msg)
        if pair is not None:
            self.submit(pair)

    def process(self, frame):
        image, depth = frame
        depth_m = depth_msg_to_m(depth) if depth is not None else None
        self.handlers[0].handle(self, image_msg_to_rgb(image), depth_m, image.header)
        return image.header.stamp

    def extra_diagnostics(self) -> dict:
        return {"frames_unmatched": self.matcher.unmatched if self.matcher else 0}


def main(args=None) -> int:
    return run_node(RgbdEncoderNode, args)
