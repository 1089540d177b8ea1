"""ROS 2 executables (SPEC §4.1); the only modules of the package that import rclpy."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def exit_status(run: Callable[[], int]) -> int:
    """An executable's body; a bad parameter or bag is one sentence on stderr and status 1, not a
    traceback (SPEC §8)."""
    from rclpy.exceptions import ParameterException

    from rgbd_vae_ros.bags import BagError

    from .base import StartError

    try:
        return run()
    except (ParameterException, BagError, StartError) as exc:
        text = " ".join(str(exc).split())
        print(f"{os.path.basename(sys.argv[0])}: error: {text.rstrip('.')}.", file=sys.stderr)
        return 1
