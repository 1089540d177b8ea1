"""Point clouds from metric depth: ``depth/points`` (SPEC §4.2), as depth_image_proc builds them.

    cloud = depth_to_points(depth_m, K, rgb_u8)         # structured (N,): x, y, z [, rgb]
    msg = points_message(header, depth_m, camera_info)  # sensor_msgs/PointCloud2
    xyz = points_from_message(msg)                      # (N, 3) float32 metres

Each pixel (u, v) with depth z becomes x = (u - cx)·z/fx, y = (v - cy)·z/fy, z, in the optical
frame of the depth image (depth_image_proc's ``point_cloud_xyz`` formula; skew is ignored as it
is there). Fields are laid out as its ``setPointCloud2FieldsByString``: float32 x, y, z at 0, 4,
8 and a 16-byte point; with colour a float32 ``rgb`` at 16 holding the bytes b, g, r, 0
(little-endian 0x00RRGGBB, as ``point_cloud_xyzrgb`` packs it) in a 32-byte point.

One difference, on purpose: depth_image_proc publishes an organized cloud (height x width) with
NaN points for missing readings. SPEC §4.2 says invalid pixels are skipped, so this cloud is
unorganized (height 1, ``is_dense`` true) and holds only valid readings, in row-major pixel order.
It also takes fx, fy, cx, cy from K (the package checks and scales K; SPEC §4.2) where
depth_image_proc reads them from P, which it expects of a rectified ``image_rect``.

The ray of every pixel (its x and y at z = 1) is computed once per (K, size) and kept in a small
cache bounded in bytes, so a frame costs a validity mask, a gather and a multiply per coordinate.
"""

from __future__ import annotations

import array
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .processing import valid_depth_mask

__all__ = [
    "PointCloudError",
    "cloud_dtype",
    "depth_to_points",
    "points_from_message",
    "points_message",
    "rgb_from_message",
]

_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32; the message package is imported only to build one
_UINT32 = 6  # sensor_msgs/PointField.UINT32, which some drivers use for packed colour
_XYZ_STEP, _XYZRGB_STEP = 16, 32


class PointCloudError(ValueError):
    """Depth, intrinsics or a PointCloud2 that cannot be used; the message says what and what was expected."""


def cloud_dtype(with_rgb: bool = False) -> np.dtype:
    """The numpy type of one point in the published layout (x, y, z float32 [+ packed rgb float32])."""
    if with_rgb:
        return np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4"] * 4,
                         "offsets": [0, 4, 8, 16], "itemsize": _XYZRGB_STEP})
    return np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": _XYZ_STEP})


def _intrinsics(camera: Any) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy from a 3x3 (or flat 9) K or from (fx, fy, cx, cy); refused unless finite with fx, fy > 0."""
    try:
        values = np.asarray(camera, dtype=np.float64)
    except (TypeError, ValueError):
        raise PointCloudError(f"intrinsics {camera!r} are not numbers; expected K (3x3) or (fx, fy, cx, cy)") from None
    if values.size == 9:
        k = values.reshape(9)
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    elif values.size == 4:
        fx, fy, cx, cy = values.reshape(4)
    else:
        raise PointCloudError(f"intrinsics have {values.size} values; expected K (3x3) or (fx, fy, cx, cy)")
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise PointCloudError(f"intrinsics fx={fx}, fy={fy}, cx={cx}, cy={cy} are not finite with fx, fy > 0")
    return float(fx), float(fy), float(cx), float(cy)


def _build_rays(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(2, H·W) float32: (u - cx)/fx and (v - cy)/fy of every pixel, row-major; times z they are x and y."""
    rays = np.empty((2, height, width), dtype=np.float32)
    rays[0] = ((np.arange(width, dtype=np.float64) - cx) / fx)[np.newaxis, :]
    rays[1] = ((np.arange(height, dtype=np.float64) - cy) / fy)[:, np.newaxis]
    rays = rays.reshape(2, height * width)
    rays.setflags(write=False)
    return rays


class _RayCache:
    """Rays by (size, intrinsics), bounded in bytes, least recently used evicted first.

    A camera stream hits one entry every frame; a stream of ever-changing sizes or calibrations
    cannot grow memory past ``max_bytes`` (a table larger than that is rebuilt for each frame).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # executor threads of several nodes may convert at once

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
        key = (width, height, fx, fy, cx, cy)
        with self._lock:
            rays = self._entries.get(key)
            if rays is not None:
                self._entries.move_to_end(key)
                return rays
        rays = _build_rays(width, height, fx, fy, cx, cy)
        if rays.nbytes > self.max_bytes:
            return rays
        with self._lock:
            if key in self._entries:  # another thread built it meanwhile
                return self._entries[key]
            self._entries[key] = rays
            self.nbytes += rays.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
        return rays

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0


# 64 MiB: twenty-six 640x480 tables (2.5 MB each) or three 1920x1080 (16.6 MB).
_RAYS = _RayCache(max_bytes=64 << 20)


def _check_depth(depth_m: Any) -> np.ndarray:
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2 or depth_m.dtype.kind != "f" or depth_m.shape[0] == 0 or depth_m.shape[1] == 0:
        raise PointCloudError(f"depth has shape {depth_m.shape} and type {depth_m.dtype}; "
                              "expected (H, W) float metres with at least one pixel")
    return depth_m.astype(np.float32, copy=False)


def _check_rgb(rgb_u8: Any, shape: tuple[int, int]) -> np.ndarray:
    rgb_u8 = np.asarray(rgb_u8)
    if rgb_u8.dtype != np.uint8 or rgb_u8.shape != (*shape, 3):
        raise PointCloudError(f"colour image has shape {rgb_u8.shape} and type {rgb_u8.dtype}; "
                              f"expected ({shape[0]}, {shape[1]}, 3) uint8 RGB, the depth's size")
    return rgb_u8


def _point_bytes(depth_m: Any, camera: Any, rgb_u8: Any, min_depth_m: float, max_depth_m: float) -> array.array:
    """The valid pixels of ``depth_m`` as the bytes of a PointCloud2's ``data`` (see :func:`depth_to_points`).

    Built in place in the ``array('B')`` a message stores, so the cloud (4-9 MB for a 640x480
    frame) is not copied once more into the message.
    """
    depth_m = _check_depth(depth_m)
    height, width = depth_m.shape
    fx, fy, cx, cy = _intrinsics(camera)
    if rgb_u8 is not None:
        rgb_u8 = _check_rgb(rgb_u8, (height, width))
    flat = depth_m.reshape(-1)
    valid = valid_depth_mask(flat)
    if min_depth_m > 0.0 or max_depth_m < math.inf:
        valid &= (flat >= min_depth_m) & (flat <= max_depth_m)
    ray_x, ray_y = _RAYS.get(width, height, fx, fy, cx, cy)
    index = np.flatnonzero(valid)  # (N,) row-major pixel numbers
    floats = 4 if rgb_u8 is None else 8  # point_step / 4
    data = array.array("B", b"\0") * (index.size * floats * 4)  # zeros: the padding depth_image_proc leaves
    cloud = np.frombuffer(data, dtype="<f4").reshape(index.size, floats)  # (N, point_step / 4), little-endian
    # Gathered by index straight into the point columns and scaled there: no frame-sized
    # temporaries, which on a busy machine cost more in page faults than the arithmetic
    # (docs/benchmarks.md); gathering 1-D columns also beat boolean-indexing (H·W, 4) rows.
    z = cloud[:, 2]
    np.take(flat, index, out=z, mode="clip")  # indices come from flatnonzero: always in range
    np.take(ray_x, index, out=cloud[:, 0], mode="clip")
    np.take(ray_y, index, out=cloud[:, 1], mode="clip")
    cloud[:, 0] *= z
    cloud[:, 1] *= z
    if rgb_u8 is not None:
        point_bytes = cloud.view(np.uint8)  # (N, 32)
        colours = rgb_u8.reshape(-1, 3)
        for channel, offset in ((0, 18), (1, 17), (2, 16)):  # b, g, r, 0 at 16..19: little-endian 0x00RRGGBB
            point_bytes[:, offset] = colours[:, channel].take(index)
    return data


def depth_to_points(depth_m: np.ndarray, camera: Any, rgb_u8: np.ndarray | None = None, *,
                    min_depth_m: float = 0.0, max_depth_m: float = math.inf) -> np.ndarray:
    """Valid pixels of ``depth_m`` (H, W) as a structured array (N,) of :func:`cloud_dtype`.

    ``camera`` is K (3x3 or flat 9) or (fx, fy, cx, cy) for the depth's own size. A pixel is
    skipped when its depth is NaN, infinite, 0 or negative, or outside [``min_depth_m``,
    ``max_depth_m``]. ``rgb_u8`` (H, W, 3), registered to the depth, adds the packed ``rgb`` field.
    """
    data = _point_bytes(depth_m, camera, rgb_u8, min_depth_m, max_depth_m)
    return np.frombuffer(data, dtype=cloud_dtype(rgb_u8 is not None))


def points_message(header: Any, depth_m: np.ndarray, camera_info: Any, rgb_u8: np.ndarray | None = None, *,
                   min_depth_m: float = 0.0, max_depth_m: float = math.inf) -> Any:
    """A ``sensor_msgs/msg/PointCloud2`` of the valid pixels of ``depth_m``, with ``header`` if given.

    ``camera_info`` is checked as everywhere in the package (K finite with fx, fy > 0, the depth's
    size or the same aspect) and, at another size, scaled to the depth's like image_proc's resize.
    """
    from sensor_msgs.msg import PointCloud2, PointField  # ROS is needed only to build a message

    from .conversion import scale_camera_info
    from .nodes.processors import camera_info_problem

    depth_m = _check_depth(depth_m)
    height, width = depth_m.shape
    problem = camera_info_problem(camera_info, width, height)
    if problem is not None:
        raise PointCloudError(problem)
    if (camera_info.width, camera_info.height) != (width, height):
        camera_info = scale_camera_info(camera_info, width, height)
    data = _point_bytes(depth_m, camera_info.k, rgb_u8, min_depth_m, max_depth_m)
    layout = cloud_dtype(rgb_u8 is not None)
    try:
        # With field checks on, the generated ``data`` setter keeps an array('B') as it is; with
        # them off (the default unless ROS_PYTHON_CHECK_FIELDS=1) it copies it. A second 4-9 MB
        # buffer per frame measured ten times the cost of the cloud on a busy machine (page faults).
        msg = PointCloud2(check_fields=True)
    except AssertionError:  # generators before check_fields always check, and keep the array
        msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, len(data) // layout.itemsize
    msg.fields = [PointField(name=name, offset=layout.fields[name][1], datatype=PointField.FLOAT32, count=1)
                  for name in layout.names]
    msg.is_bigendian = False
    msg.point_step = layout.itemsize
    msg.row_step = len(data)
    msg.is_dense = True  # every point is a reading: invalid pixels were skipped
    msg.data = data
    return msg


def _data_bytes(data: Any) -> np.ndarray:
    """A message's ``data`` (array('B'), bytes, or a numpy array from rosbags) as flat uint8, without a copy."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        raise PointCloudError(f"point cloud data of type {type(data).__name__!r} is not a byte sequence") from None


def _field_values(msg: Any, names: tuple[str, ...], kinds: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The values of float32/uint32 fields ``names`` for every point of a PointCloud2, row-major."""
    fields = {f.name: f for f in msg.fields}
    missing = [name for name in names if name not in fields]
    if missing:
        raise PointCloudError(f"point cloud has fields {sorted(fields)!r}; expected {list(names)!r}")
    height, width, point_step, row_step = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    for name in names:
        field = fields[name]
        if field.datatype not in kinds or field.count != 1 or field.offset + 4 > point_step:
            raise PointCloudError(f"point cloud field {name!r} is datatype {field.datatype} x {field.count} at "
                                  f"offset {field.offset} in a {point_step}-byte point; expected one 4-byte value "
                                  "inside the point")
    if height < 0 or width < 0 or row_step < width * point_step:
        raise PointCloudError(f"point cloud is {width}x{height} points of {point_step} bytes with row_step "
                              f"{row_step}; expected row_step >= width x point_step")
    flat = _data_bytes(msg.data)
    if flat.size < row_step * height:
        raise PointCloudError(f"point cloud data holds {flat.size} bytes; expected row_step x height = "
                              f"{row_step} x {height} = {row_step * height}")
    if height * width == 0:
        return tuple(np.empty(0, dtype=np.float32) for _ in names)
    order = ">" if msg.is_bigendian else "<"
    rows = flat[:row_step * height].reshape(height, row_step)[:, :width * point_step]
    points = rows.reshape(height, width, point_step)
    values = []
    for name in names:
        offset = fields[name].offset
        kind = "f4" if fields[name].datatype == _FLOAT32 else "u4"
        raw = np.ascontiguousarray(points[:, :, offset:offset + 4]).view(order + kind).reshape(-1)
        values.append(raw.astype(raw.dtype.newbyteorder("="), copy=False))
    return tuple(values)


def points_from_message(msg: Any) -> np.ndarray:
    """(N, 3) float32 x, y, z of every point of a ``sensor_msgs/PointCloud2`` (organized clouds row by
    row, their NaN points included)."""
    x, y, z = _field_values(msg, ("x", "y", "z"), (_FLOAT32,))
    return np.stack([x, y, z], axis=1)


def rgb_from_message(msg: Any) -> np.ndarray:
    """(N, 3) uint8 R, G, B of every point, from a packed ``rgb`` (or ``rgba``) float32/uint32 field."""
    name = "rgb" if any(f.name == "rgb" for f in msg.fields) else "rgba"
    (packed,) = _field_values(msg, (name,), (_FLOAT32, _UINT32))
    packed = packed.view(np.uint32)
    return np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=1).astype(np.uint8)
