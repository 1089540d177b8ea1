"""The `bag_player` executable (SPEC §4.1, §9)."""

from rgbd_vae_ros.nodes import not_built_yet


def main(args=None) -> int:
    return not_built_yet("bag_player", "the rosbag replay issue")
