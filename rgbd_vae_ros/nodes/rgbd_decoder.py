"""The `rgbd_decoder` executable (SPEC §4.1)."""

from rgbd_vae_ros.nodes import not_built_yet


def main(args=None) -> int:
    return not_built_yet("rgbd_decoder", "the ROS 2 nodes issue")
