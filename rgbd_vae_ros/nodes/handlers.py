"""The three jobs a node can do — estimate depth, encode, decode — each owning its stage and
publishers. Nodes hold one (the single executables) or chain all three (``rgbd_pipeline``)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from rgbd_vae_ros.conversion import depth_m_to_mm, latent_to_msg, numpy_to_image, scale_camera_info
from rgbd_vae_ros.processing import colorize_depth
from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage


def _open(stage_cls, node):
    return stage_cls.open(node.param("model"), node.param("backend"), node.param("device"), node.param("fp16"))


class _Handler:
    stage_cls = None

    def __init__(self, node):
        if not node.param("model"):
            raise ValueError("parameter 'model' is empty; set it to an exported model file or folder")
        self.stage = _open(self.stage_cls, node)
        self.publishers: list = []

    def publisher(self, node, topic: str, msg_type=Image):
        pub = node.create_lifecycle_publisher(msg_type, topic, node.output_qos())
        self.publishers.append(pub)
        return pub

    def close(self, node) -> None:
        for pub in self.publishers:
            node.destroy_lifecycle_publisher(pub)
        self.publishers = []
        self.stage.close()


def depth_image_msg(depth_m: np.ndarray, encoding: str, max_depth_m: float, header) -> Image:
    """REP 118 depth: 32FC1 metres with NaN for invalid, or 16UC1 millimetres with 0."""
    if encoding == "16UC1":
        return numpy_to_image(depth_m_to_mm(np.minimum(depth_m, max_depth_m)), "16UC1", header)
    return numpy_to_image(depth_m.astype(np.float32, copy=False), "32FC1", header)


class DepthHandler(_Handler):
    """RGB -> ``depth/image``, ``depth/camera_info``, ``depth/colorized`` (only while watched)."""

    stage_cls = DepthStage

    def create_publishers(self, node) -> None:
        self.depth = self.publisher(node, "depth/image")
        self.info = self.publisher(node, "depth/camera_info", CameraInfo)
        self.colorized = self.publisher(node, "depth/colorized")

    def handle(self, node, rgb_u8: np.ndarray, header, camera_info=None) -> np.ndarray:
        depth_m = self.stage(rgb_u8)
        self.depth.publish(depth_image_msg(depth_m, node.param("depth_encoding"), node.param("max_depth"), header))
        if camera_info is not None:
            info = scale_camera_info(camera_info, depth_m.shape[1], depth_m.shape[0])
            info.header = header
            self.info.publish(info)
        if self.colorized.get_subscription_count() > 0:
            self.colorized.publish(numpy_to_image(colorize_depth(depth_m, node.param("max_depth")), "rgb8", header))
        return depth_m


class EncodeHandler(_Handler):
    """RGB (+ depth) -> ``latent`` (SPEC §4.3)."""

    stage_cls = EncodeStage

    def create_publishers(self, node) -> None:
        self.latent = self.publisher(node, "latent")

    def handle(self, node, rgb_u8: np.ndarray, depth_m: np.ndarray | None, header) -> np.ndarray:
        mu, logvar = self.stage(rgb_u8, depth_m)
        self.latent.publish(latent_to_msg(mu, logvar, header))
        return mu


class DecodeHandler(_Handler):
    """Latent -> ``decoded/image`` (rgb8) and ``decoded/depth`` (32FC1 metres)."""

    stage_cls = DecodeStage

    def create_publishers(self, node) -> None:
        self.image = self.publisher(node, "decoded/image")
        self.depth = self.publisher(node, "decoded/depth")

    def handle(self, node, mu: np.ndarray, header) -> None:
        rgb_u8, depth_m = self.stage(mu, node.output_size())
        self.image.publish(numpy_to_image(rgb_u8, "rgb8", header))
        if depth_m is not None:
            self.depth.publish(numpy_to_image(depth_m, "32FC1", header))
