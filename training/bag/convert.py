"""NYU sequences (raw scene folders, the labeled .mat, synthetic output) to a rosbag2 (SPEC §9).

Each frame becomes ``/camera/rgb/image_raw`` (rgb8) and ``/camera/depth/image_raw`` (32FC1 metres,
registered to the RGB camera, NaN = no reading), each with its CameraInfo, stamped with the data
set's own times; ``/tf_static`` carries the camera frames once, latched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbd_vae_ros.bags import (
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    LATCHED,
    RGB_INFO_TOPIC,
    RGB_TOPIC,
    TF_STATIC_TOPIC,
    Qos,
    typestore,
    write_bag,
)

from ..data.errors import DataError
from ..data.nyu_calibration import R_DEPTH_TO_RGB, T_DEPTH_TO_RGB, camera_matrix_ros
from ..faults import kill_point

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
BASE_FRAME = "camera_link"
RGB_FRAME = "camera_rgb_optical_frame"  # registered depth lives in the RGB camera's frame too
DEPTH_FRAME = "camera_depth_optical_frame"
# The labeled .mat has no times: its frames are stamped at this rate from this start.
LABELED_RATE_HZ = 30.0
LABELED_START_S = 1_300_000_000.0
SENSOR_QOS = Qos(reliable=True, transient_local=False, depth=10)


@dataclass
class BagFrame:
    rgb_u8: np.ndarray
    rgb_stamp_ns: int
    depth_m: np.ndarray
    depth_stamp_ns: int


@dataclass
class Sequence:
    """Frames to convert: how many, and a function that yields them (read lazily)."""

    description: str
    count: int
    frames: Callable[[], Iterator[BagFrame]]


def seconds_to_ns(stamp_s: float) -> int:
    """Data-set times have microsecond resolution (NYU file names); keep exactly that."""
    return int(round(stamp_s * 1e6)) * 1000


def nyu_raw_sequence(scene_dir: str | os.PathLike, scene: str | None = None) -> Sequence:
    """One NYU raw scene folder (or one named ``scene`` of a folder of them)."""
    from ..data.nyu_raw import NYURawScenes

    reader = NYURawScenes(scene_dir, scenes=[scene] if scene else None)
    if len(reader.scenes) > 1:
        raise DataError(f"{str(scene_dir)!r} holds {len(reader.scenes)} scenes ({', '.join(reader.scenes[:4])}"
                        f"{', ...' if len(reader.scenes) > 4 else ''}); a bag holds one sequence, so pick one "
                        "with --scene NAME or give its folder")
    if scene and not len(reader):
        raise DataError(f"{str(scene_dir)!r} has no scene {scene!r}")

    def frames() -> Iterator[BagFrame]:
        for i, (_, pair) in enumerate(reader.pairs):
            frame = reader[i]
            yield BagFrame(frame.rgb_u8, seconds_to_ns(pair.rgb_stamp_s), frame.depth_m,
                           seconds_to_ns(pair.depth_stamp_s))

    return Sequence(f"NYU raw scene {reader.scenes[0]}", len(reader), frames)


def nyu_mat_sequence(mat_file: str | os.PathLike, split: str | None = None, scene: str | None = None,
                     filled_depth: bool = False) -> Sequence:
    """Frames of the labeled .mat (optionally one split or one scene), stamped at 30 Hz.

    Depth is what the sensor measured (``rawDepths``, registered, NaN = no reading) unless
    ``filled_depth`` asks for the in-painted ``depths``.
    """
    from ..data.nyu_mat import LABELED_NAME, NYULabeled

    path = Path(mat_file)
    reader = NYULabeled(path / LABELED_NAME if path.is_dir() else path, split=split, raw_depth=not filled_depth)
    indices = list(range(len(reader)))
    if scene:
        names = reader.frame_scenes or []
        indices = [i for i in indices if names and names[int(reader.indices[i])] == scene]
        if not indices:
            raise DataError(f"{str(mat_file)!r} has no frames of scene {scene!r}")

    def frames() -> Iterator[BagFrame]:
        for k, i in enumerate(indices):
            frame = reader[i]
            stamp = seconds_to_ns(LABELED_START_S + k / LABELED_RATE_HZ)
            yield BagFrame(frame.rgb_u8, stamp, frame.depth_m, stamp)

    return Sequence(f"{len(indices)} labeled frames of {path.name}", len(indices), frames)


def detected_sequence(path: str | os.PathLike, scene: str | None = None) -> Sequence:
    """Output of ``rgbd-vae synth`` in either layout."""
    from ..data.detect import detect_layout

    layout = detect_layout(path)
    if layout == "nyu-raw":
        return nyu_raw_sequence(path, scene)
    if layout == "nyu-mat":
        return nyu_mat_sequence(path, scene=scene)
    raise DataError(f"{str(path)!r} is in the {layout} layout; expected the nyu-raw or nyu-mat output of rgbd-vae synth")


def _header(stamp_ns: int, frame_id: str):
    store = typestore()
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def image_message(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return typestore().types[IMAGE](
        header=_header(stamp_ns, frame_id), height=height, width=width, encoding=encoding, is_bigendian=0,
        step=array.strides[0], data=array.view(np.uint8).reshape(-1))


def camera_info_message(width: int, height: int, stamp_ns: int, frame_id: str):
    """The NYU RGB camera's intrinsics at ``width`` x ``height`` (pinhole; registered depth shares them)."""
    types = typestore().types
    k = camera_matrix_ros("rgb", width, height)
    projection = np.hstack([k, np.zeros((3, 1))])
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[CAMERA_INFO](
        header=_header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=k.reshape(-1), r=np.eye(3).reshape(-1), p=projection.reshape(-1),
        binning_x=0, binning_y=0, roi=roi)


def _quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return float(x), float(y), float(z), float(w)


# camera_link (x forward, y left, z up) to an optical frame (z forward, x right, y down).
_OPTICAL_FROM_LINK = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_transforms() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(parent, child, rotation, translation): the RGB optical frame on camera_link, and the IR
    (depth) camera in the RGB optical frame from the NYU calibration."""
    # nyu_calibration: p_rgb = (-R) p_ir - T, a rigid motion since the toolbox's R is -rotation.
    return [(BASE_FRAME, RGB_FRAME, _OPTICAL_FROM_LINK, np.zeros(3)),
            (RGB_FRAME, DEPTH_FRAME, -R_DEPTH_TO_RGB, -T_DEPTH_TO_RGB)]


def tf_static_message(stamp_ns: int):
    types = typestore().types
    transforms = []
    for parent, child, rotation, translation in camera_transforms():
        x, y, z, w = _quaternion(rotation)
        transforms.append(types["geometry_msgs/msg/TransformStamped"](
            header=_header(stamp_ns, parent), child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=float(translation[0]), y=float(translation[1]),
                                                               z=float(translation[2])),
                rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))))
    return types[TF_MESSAGE](transforms=transforms)


def _check_frame(frame: BagFrame, index: int) -> None:
    if frame.rgb_u8.dtype != np.uint8 or frame.rgb_u8.ndim != 3 or frame.rgb_u8.shape[2] != 3:
        raise DataError(f"frame {index}: RGB is {frame.rgb_u8.dtype} {frame.rgb_u8.shape}; expected uint8 (H, W, 3)")
    if frame.depth_m is None or frame.depth_m.shape != frame.rgb_u8.shape[:2]:
        shape = None if frame.depth_m is None else frame.depth_m.shape
        raise DataError(f"frame {index}: depth {shape} does not match RGB {frame.rgb_u8.shape[:2]}")


def write_sequence(sequence: Sequence, out: str | os.PathLike, storage: str = "mcap",
                   progress: Callable[[], None] | None = None, overwrite: bool = False) -> dict[str, int]:
    """Write ``sequence`` as a rosbag2 at ``out`` (atomically); returns messages per topic."""
    with write_bag(out, storage, overwrite=overwrite) as bag:
        bag.add_topic(TF_STATIC_TOPIC, TF_MESSAGE, LATCHED)
        for topic, msgtype in ((RGB_TOPIC, IMAGE), (RGB_INFO_TOPIC, CAMERA_INFO),
                               (DEPTH_TOPIC, IMAGE), (DEPTH_INFO_TOPIC, CAMERA_INFO)):
            bag.add_topic(topic, msgtype, SENSOR_QOS)
        last_ns = -1
        for index, frame in enumerate(sequence.frames()):
            _check_frame(frame, index)
            if index == 0:
                bag.write(TF_STATIC_TOPIC, TF_MESSAGE, min(frame.rgb_stamp_ns, frame.depth_stamp_ns),
                          tf_static_message(min(frame.rgb_stamp_ns, frame.depth_stamp_ns)))
            height, width = frame.depth_m.shape
            depth = np.asarray(frame.depth_m, dtype=np.float32)
            messages = [
                (frame.depth_stamp_ns, DEPTH_TOPIC, IMAGE, image_message(depth, "32FC1", frame.depth_stamp_ns, RGB_FRAME)),
                (frame.depth_stamp_ns, DEPTH_INFO_TOPIC, CAMERA_INFO,
                 camera_info_message(width, height, frame.depth_stamp_ns, RGB_FRAME)),
                (frame.rgb_stamp_ns, RGB_TOPIC, IMAGE, image_message(frame.rgb_u8, "rgb8", frame.rgb_stamp_ns, RGB_FRAME)),
                (frame.rgb_stamp_ns, RGB_INFO_TOPIC, CAMERA_INFO,
                 camera_info_message(width, height, frame.rgb_stamp_ns, RGB_FRAME)),
            ]
            messages.sort(key=lambda m: m[0])  # recorded in time order, as a recorder would have
            if messages[0][0] < last_ns:
                raise DataError(f"frame {index} is stamped before the frame ahead of it; expected increasing times")
            for stamp_ns, topic, msgtype, message in messages:
                bag.write(topic, msgtype, stamp_ns, message)
            last_ns = messages[-1][0]
            kill_point("bag-frame")
            if progress:
                progress()
        counts = dict(bag.counts)
    return counts
