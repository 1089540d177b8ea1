"""Cost of sensor_msgs/Image <-> numpy conversion for one 640x480 frame (SPEC §10)."""

from __future__ import annotations

import numpy as np

from rgbd_vae_ros.conversion import depth_mm_to_m, image_to_numpy, numpy_to_image

from .timing import Timing, time_call


def bench_conversion(width: int = 640, height: int = 480, runs: int = 200) -> list[Timing]:
    """Time each direction for an rgb8 and a 32FC1 frame, plus 16UC1 millimetres -> metres."""
    rng = np.random.default_rng(0)
    rgb_u8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth_m = rng.uniform(0.5, 10.0, (height, width)).astype(np.float32)
    depth_mm = (depth_m * 1000).astype(np.uint16)
    rgb_msg = numpy_to_image(rgb_u8, "rgb8")
    depth_msg = numpy_to_image(depth_m, "32FC1")
    mm_msg = numpy_to_image(depth_mm, "16UC1")
    return [
        time_call("rgb8 numpy -> Image", lambda: numpy_to_image(rgb_u8, "rgb8"), runs),
        time_call("rgb8 Image -> numpy (view)", lambda: image_to_numpy(rgb_msg), runs),
        time_call("rgb8 Image -> numpy (copy)", lambda: image_to_numpy(rgb_msg, copy=True), runs),
        time_call("32FC1 numpy -> Image", lambda: numpy_to_image(depth_m, "32FC1"), runs),
        time_call("32FC1 Image -> numpy (view)", lambda: image_to_numpy(depth_msg), runs),
        time_call("32FC1 Image -> numpy (copy)", lambda: image_to_numpy(depth_msg, copy=True), runs),
        time_call("16UC1 Image -> metres", lambda: depth_mm_to_m(image_to_numpy(mm_msg)), runs),
    ]
