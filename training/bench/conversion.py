"""Cost of sensor_msgs/Image <-> numpy conversion and of depth -> PointCloud2 for one 640x480 frame (SPEC §10)."""

from __future__ import annotations

import numpy as np

from rgbd_vae_ros.conversion import depth_mm_to_m, image_to_numpy, numpy_to_image
from rgbd_vae_ros.points import depth_to_points, points_message

from .timing import Timing, time_call


def bench_conversion(width: int = 640, height: int = 480, runs: int = 200) -> list[Timing]:
    """Time each direction for an rgb8 and a 32FC1 frame, 16UC1 millimetres -> metres, and depth_m (10 %
    of it missing) -> points and PointCloud2 messages (xyz, and xyz + rgb)."""
    from sensor_msgs.msg import CameraInfo

    rng = np.random.default_rng(0)
    rgb_u8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth_m = rng.uniform(0.5, 10.0, (height, width)).astype(np.float32)
    depth_mm = (depth_m * 1000).astype(np.uint16)
    rgb_msg = numpy_to_image(rgb_u8, "rgb8")
    depth_msg = numpy_to_image(depth_m, "32FC1")
    mm_msg = numpy_to_image(depth_mm, "16UC1")
    holey_m = np.where(rng.random((height, width)) < 0.1, np.float32(np.nan), depth_m)
    k = [0.8 * width, 0.0, width / 2 - 0.5, 0.0, 0.8 * width, height / 2 - 0.5, 0.0, 0.0, 1.0]
    info = CameraInfo(width=width, height=height, k=k)
    return [
        time_call("rgb8 numpy -> Image", lambda: numpy_to_image(rgb_u8, "rgb8"), runs),
        time_call("rgb8 Image -> numpy (view)", lambda: image_to_numpy(rgb_msg), runs),
        time_call("rgb8 Image -> numpy (copy)", lambda: image_to_numpy(rgb_msg, copy=True), runs),
        time_call("32FC1 numpy -> Image", lambda: numpy_to_image(depth_m, "32FC1"), runs),
        time_call("32FC1 Image -> numpy (view)", lambda: image_to_numpy(depth_msg), runs),
        time_call("32FC1 Image -> numpy (copy)", lambda: image_to_numpy(depth_msg, copy=True), runs),
        time_call("16UC1 Image -> metres", lambda: depth_mm_to_m(image_to_numpy(mm_msg)), runs),
        time_call("depth -> points xyz (numpy)", lambda: depth_to_points(holey_m, k), runs),
        time_call("depth -> PointCloud2 xyz", lambda: points_message(rgb_msg.header, holey_m, info), runs),
        time_call("depth + rgb -> PointCloud2 xyzrgb",
                  lambda: points_message(rgb_msg.header, holey_m, info, rgb_u8), runs),
    ]
