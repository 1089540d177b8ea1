"""depth/points: PointCloud2 from metric depth equals an independent back-projection and crosses real
rclpy serialisation intact, in depth_image_proc's field layout."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField
from std_msgs.msg import Header

from rgbd_vae_ros import points
from rgbd_vae_ros.points import (PointCloudError, depth_to_points, points_from_message, points_message,
                                 rgb_from_message)

# A real calibration is never centred: principal point off the image centre, fx != fy.
FX, FY, CX, CY = 71.3, 68.9, 29.4, 25.8
HEIGHT, WIDTH = 48, 64


def _k(fx=FX, fy=FY, cx=CX, cy=CY) -> list[float]:
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


def _camera_info(width=WIDTH, height=HEIGHT, k=None) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = _k() if k is None else k
    info.p = [*info.k[:3], 0.0, *info.k[3:6], 0.0, *info.k[6:], 0.0]
    return info


def _depth_with_holes(height=HEIGHT, width=WIDTH, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth_m = rng.uniform(0.3, 9.0, (height, width)).astype(np.float32)
    depth_m[3, :] = np.nan
    depth_m[:, 5] = 0.0
    depth_m[10:14, 20:30] = np.inf
    depth_m[-18, -24] = -np.inf  # (30, 40) at the default size
    depth_m[-17, -23] = -1.5
    return depth_m


def _expected(depth_m, fx=FX, fy=FY, cx=CX, cy=CY, lo=0.0, hi=math.inf):
    """depth_image_proc's loop, pixel by pixel: x = (u - cx)·z/fx, y = (v - cy)·z/fy; valid pixels only."""
    rows = []
    for v in range(depth_m.shape[0]):
        for u in range(depth_m.shape[1]):
            z = float(depth_m[v, u])
            if math.isfinite(z) and z > 0 and lo <= z <= hi:
                rows.append(((u - cx) * z / fx, (v - cy) * z / fy, z, v, u))
    table = np.array(rows, dtype=np.float64)
    return table[:, :3], table[:, 3:].astype(int)


def _header() -> Header:
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1700000123, 456789
    return header


def test_points_equal_an_independent_back_projection_and_skip_every_kind_of_hole():
    depth_m = _depth_with_holes()
    expected, _ = _expected(depth_m)
    cloud = depth_to_points(depth_m, np.array(_k()).reshape(3, 3))
    holes = 1 * WIDTH + HEIGHT - 1 + 4 * 10 + 2  # the NaN row, the zero column (less its NaN pixel), inf, -inf, < 0
    assert cloud.size == HEIGHT * WIDTH - holes == len(expected)
    got = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7)
    # (fx, fy, cx, cy) is the same camera as K
    same = depth_to_points(depth_m, (FX, FY, CX, CY))
    assert same.tobytes() == cloud.tobytes()


def test_depth_range_skips_readings_outside_it_and_keeps_the_ends():
    depth_m = _depth_with_holes()
    depth_m[0, 0], depth_m[0, 1] = 1.0, 4.0  # exactly on the range's ends
    expected, _ = _expected(depth_m, lo=1.0, hi=4.0)
    cloud = depth_to_points(depth_m, _k(), min_depth_m=1.0, max_depth_m=4.0)
    assert cloud.size == len(expected) > 0
    assert cloud["z"].min() == 1.0 and cloud["z"].max() == 4.0
    np.testing.assert_allclose(np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1), expected, rtol=2e-6, atol=1e-7)


def test_message_round_trips_through_rclpy_serialisation():
    depth_m = _depth_with_holes()
    expected, _ = _expected(depth_m)
    msg = points_message(_header(), depth_m, _camera_info())
    back = deserialize_message(serialize_message(msg), PointCloud2)
    assert back.header.frame_id == "camera_color_optical_frame"
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1700000123, 456789)
    assert (back.height, back.width) == (1, len(expected))
    assert back.is_dense and not back.is_bigendian
    np.testing.assert_allclose(points_from_message(back), expected, rtol=2e-6, atol=1e-7)


def test_field_layout_is_depth_image_procs():
    depth_m = _depth_with_holes()
    xyz = points_message(_header(), depth_m, _camera_info())
    layout = [(f.name, f.offset, f.datatype, f.count) for f in xyz.fields]
    assert layout == [("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1),
                      ("z", 8, PointField.FLOAT32, 1)]
    assert xyz.point_step == 16 and xyz.row_step == 16 * xyz.width == len(xyz.data)
    rgb_u8 = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    xyzrgb = points_message(_header(), depth_m, _camera_info(), rgb_u8)
    assert [(f.name, f.offset, f.datatype, f.count) for f in xyzrgb.fields] == [
        *layout, ("rgb", 16, PointField.FLOAT32, 1)]
    assert xyzrgb.point_step == 32 and xyzrgb.row_step == 32 * xyzrgb.width == len(xyzrgb.data)
    # The same points, and the bytes a reader that knows only the layout finds there.
    first = bytes(xyz.data[:12])
    assert bytes(xyzrgb.data[:12]) == first
    x, y, z = struct.unpack("<3f", first)
    expected, _ = _expected(depth_m)
    np.testing.assert_allclose((x, y, z), expected[0], rtol=2e-6)


def test_rgb_is_packed_like_point_cloud_xyzrgb():
    depth_m = np.full((HEIGHT, WIDTH), 2.0, dtype=np.float32)
    depth_m[0, 0] = np.nan  # the colour of a skipped pixel must not shift the others
    rgb_u8 = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    rgb_u8[...] = (10, 20, 30)
    rgb_u8[2, 7] = (200, 100, 50)
    msg = deserialize_message(serialize_message(points_message(_header(), depth_m, _camera_info(), rgb_u8)),
                              PointCloud2)
    _, pixels = _expected(depth_m)
    point = int(np.flatnonzero((pixels[:, 0] == 2) & (pixels[:, 1] == 7))[0])
    start = point * msg.point_step + 16
    assert bytes(msg.data[start:start + 4]) == bytes([50, 100, 200, 0])  # b, g, r, 0
    assert struct.unpack("<I", bytes(msg.data[start:start + 4]))[0] == 0x00C86432
    colours = rgb_from_message(msg)
    np.testing.assert_array_equal(colours, rgb_u8[pixels[:, 0], pixels[:, 1]])
    assert tuple(colours[point]) == (200, 100, 50)


def test_camera_info_at_twice_the_depths_size_is_scaled_to_it():
    depth_m = _depth_with_holes(HEIGHT // 2, WIDTH // 2, seed=3)
    msg = points_message(_header(), depth_m, _camera_info(WIDTH, HEIGHT))
    expected, _ = _expected(depth_m, FX / 2, FY / 2, CX / 2, CY / 2)
    np.testing.assert_allclose(points_from_message(msg), expected, rtol=2e-6, atol=1e-7)
    unscaled, _ = _expected(depth_m)
    assert not np.allclose(points_from_message(msg)[:, :2], unscaled[:, :2], rtol=1e-3)


@pytest.mark.parametrize("k, what", [
    (_k(fx=float("nan")), "not finite"),
    (_k(cy=float("inf")), "not finite"),
    (_k(fx=0.0), "fx, fy > 0"),
    (_k(fy=-70.0), "fx, fy > 0"),
])
def test_bad_intrinsics_are_refused_in_one_sentence(k, what):
    depth_m = _depth_with_holes()
    for call in (lambda: depth_to_points(depth_m, k), lambda: points_message(_header(), depth_m, _camera_info(k=k))):
        with pytest.raises(PointCloudError, match=what) as caught:
            call()
        text = str(caught.value)
        assert "\n" not in text and text.count(";") <= 1 and len(text) < 200


def test_other_mismatches_are_refused_in_one_sentence():
    depth_m = _depth_with_holes()
    cases = [
        (lambda: points_message(_header(), depth_m, _camera_info(64, 64)), "another aspect"),
        (lambda: points_message(_header(), depth_m, _camera_info(0, 0)), "calibrated size"),
        (lambda: depth_to_points(depth_m, _k(), np.zeros((HEIGHT, WIDTH + 1, 3), np.uint8)), "the depth's size"),
        (lambda: depth_to_points(depth_m, _k(), np.zeros((HEIGHT, WIDTH, 3), np.float32)), "uint8 RGB"),
        (lambda: depth_to_points(depth_m[None], _k()), r"expected \(H, W\) float"),
        (lambda: depth_to_points(np.ones((HEIGHT, WIDTH), np.uint16), _k()), r"expected \(H, W\) float"),
        (lambda: depth_to_points(depth_m, [1.0, 2.0]), "2 values"),
    ]
    for call, what in cases:
        with pytest.raises(PointCloudError, match=what) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_a_frame_without_readings_is_an_empty_valid_cloud():
    depth_m = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    msg = deserialize_message(serialize_message(points_message(_header(), depth_m, _camera_info())), PointCloud2)
    assert (msg.height, msg.width, msg.row_step, len(msg.data)) == (1, 0, 0, 0)
    assert points_from_message(msg).shape == (0, 3)


def test_reader_takes_an_organized_big_endian_cloud_with_padded_rows():
    """What depth_image_proc publishes (height x width, NaN points), from a big-endian machine."""
    height, width, step, row_step = 2, 3, 20, 3 * 20 + 8
    xyz = np.arange(height * width * 3, dtype=np.float64).reshape(height, width, 3) / 4
    xyz[1, 2] = np.nan
    data = bytearray(row_step * height)
    for v in range(height):
        for u in range(width):
            start = v * row_step + u * step
            data[start + 4:start + 16] = struct.pack(">3f", *xyz[v, u])
            data[start:start + 4] = struct.pack(">I", (u * 40) << 16 | (v * 90) << 8 | 7)
    msg = PointCloud2(height=height, width=width, point_step=step, row_step=row_step, is_bigendian=True,
                      is_dense=False, data=bytes(data))
    msg.fields = [PointField(name="rgb", offset=0, datatype=PointField.UINT32, count=1)] + [
        PointField(name=name, offset=4 + 4 * i, datatype=PointField.FLOAT32, count=1) for i, name in enumerate("xyz")]
    msg = deserialize_message(serialize_message(msg), PointCloud2)
    np.testing.assert_array_equal(points_from_message(msg), xyz.reshape(-1, 3).astype(np.float32))
    colours = rgb_from_message(msg)
    assert tuple(colours[5]) == (80, 90, 7) and tuple(colours[1]) == (40, 0, 7)


def test_reader_refuses_a_cloud_it_cannot_read():
    msg = points_message(_header(), _depth_with_holes(), _camera_info())
    short = deserialize_message(serialize_message(msg), PointCloud2)
    short.data = bytes(short.data[:-1])
    with pytest.raises(PointCloudError, match="expected row_step x height"):
        points_from_message(short)
    with pytest.raises(PointCloudError, match=r"expected \['x', 'y', 'z'\]"):
        points_from_message(PointCloud2())
    with pytest.raises(PointCloudError, match="rgb"):
        rgb_from_message(msg)


def test_ray_cache_is_reused_and_bounded_in_bytes():
    cache = points._RayCache(max_bytes=3 * 2 * 4 * WIDTH * HEIGHT)  # room for three tables
    first = cache.get(WIDTH, HEIGHT, FX, FY, CX, CY)
    assert cache.get(WIDTH, HEIGHT, FX, FY, CX, CY) is first
    for fx in np.linspace(50, 90, 20):  # a calibration changing every frame
        cache.get(WIDTH, HEIGHT, float(fx), FY, CX, CY)
    assert len(cache) == 3 and cache.nbytes <= cache.max_bytes
    huge = cache.get(WIDTH * 4, HEIGHT * 4, FX, FY, CX, CY)  # larger than the bound: built, not kept
    assert huge.shape == (2, 16 * WIDTH * HEIGHT) and cache.nbytes <= cache.max_bytes
    assert not first.flags.writeable


def test_a_new_calibration_at_the_same_size_is_not_served_old_rays():
    depth_m = _depth_with_holes()
    for fx, cx in ((FX, CX), (FX * 1.5, CX + 3.0), (FX, CX)):
        expected, _ = _expected(depth_m, fx=fx, cx=cx)
        cloud = depth_to_points(depth_m, _k(fx=fx, cx=cx))
        np.testing.assert_allclose(cloud["x"], expected[:, 0], rtol=2e-6, atol=1e-7)
