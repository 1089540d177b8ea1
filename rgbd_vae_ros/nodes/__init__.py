"""ROS 2 executables (SPEC §4.1); the only modules of the package that import rclpy."""

from __future__ import annotations

import sys


def not_built_yet(executable: str, issue: str) -> int:
    """Entry point of an executable whose node is not built yet: say so and exit 1."""
    print(f"rgbd_vae_ros: the {executable} executable is not built yet; it arrives with {issue}.",
          file=sys.stderr)
    return 1
