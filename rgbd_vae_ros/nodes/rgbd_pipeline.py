"""``rgbd_pipeline``: RGB (+ optional depth) -> estimated depth -> latent -> decoded RGB-D in one
process, publishing everything the three single nodes publish (SPEC §4.1). Measured depth, when
a depth frame lies within ``sync_slop`` of the image, is what gets encoded; otherwise the estimate."""

from __future__ import annotations

from .base import PerceptionNode, run_node
from .processors import Pipeline


class RgbdPipelineNode(PerceptionNode):
    processor_cls = Pipeline

    def __init__(self, **kwargs):
        super().__init__("rgbd_pipeline", **kwargs)


def main(args=None) -> int:
    return run_node(RgbdPipelineNode, args)
