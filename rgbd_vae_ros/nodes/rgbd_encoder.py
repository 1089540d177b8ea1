"""The `rgbd_encoder` executable (SPEC §4.1)."""

from rgbd_vae_ros.nodes import not_built_yet


def main(args=None) -> int:
    return not_built_yet("rgbd_encoder", "the ROS 2 nodes issue")
