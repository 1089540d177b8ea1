"""``rgbd_encoder``: RGB-D (or RGB only) -> latent code (SPEC §4.1-4.3)."""

from __future__ import annotations

from .base import PerceptionNode, run_node
from .processors import Encoder


class RgbdEncoderNode(PerceptionNode):
    processor_cls = Encoder

    def __init__(self, **kwargs):
        super().__init__("rgbd_encoder", **kwargs)


def main(args=None) -> int:
    return run_node(RgbdEncoderNode, args)
