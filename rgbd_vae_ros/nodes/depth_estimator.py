"""``depth_estimator``: RGB -> metric depth (SPEC §4.1, §4.2)."""

from __future__ import annotations

from .base import PerceptionNode, run_node
from .processors import DepthEstimator


class DepthEstimatorNode(PerceptionNode):
    processor_cls = DepthEstimator

    def __init__(self, **kwargs):
        super().__init__("depth_estimator", **kwargs)


def main(args=None) -> int:
    return run_node(DepthEstimatorNode, args)
