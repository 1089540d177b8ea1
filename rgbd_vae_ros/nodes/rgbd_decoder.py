"""``rgbd_decoder``: latent code -> RGB + depth (SPEC §4.1, §4.2)."""

from __future__ import annotations

from .base import PerceptionNode, run_node
from .processors import Decoder


class RgbdDecoderNode(PerceptionNode):
    processor_cls = Decoder

    def __init__(self, **kwargs):
        super().__init__("rgbd_decoder", **kwargs)


def main(args=None) -> int:
    return run_node(RgbdDecoderNode, args)
