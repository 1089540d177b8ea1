"""ROS 2 executables (SPEC §4.1); the only modules of the package that import rclpy."""

from __future__ import annotations
