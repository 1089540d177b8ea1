"""RGB-D sequences to a rosbag2 (SPEC §9): the NYU ones (raw scene folders, the labeled .mat,
synthetic output) here, and the shared writer the TUM / 7-Scenes converters (``slam.py``) use.

Each frame becomes ``/camera/rgb/image_raw`` (rgb8) and ``/camera/depth/image_raw`` (32FC1 metres,
NaN = no reading; registered to the RGB camera where the set is), each with its CameraInfo, stamped
with the data set's own times; ``/tf_static`` carries the camera frames once, latched. Sequences
with ground truth add ``/ground_truth/pose`` (geometry_msgs/PoseStamped in ``world``) and ``/tf``
(``world`` to ``camera_link``).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
GROUND_TRUTH_TOPIC = "/ground_truth/pose"
TF_TOPIC = "/tf"
WORLD_FRAME = "world"
BASE_FRAME = "camera_link"
RGB_FRAME = "camera_rgb_optical_frame"  # registered depth lives in the RGB camera's frame too
DEPTH_FRAME = "camera_depth_optical_frame"
# The labeled .mat has no times: its frames are stamped at this rate from this start.
LABELED_RATE_HZ = 30.0
LABELED_START_S = 1_300_000_000.0
SENSOR_QOS = Qos(reliable=True, transient_local=False, depth=10)
TF_QOS = Qos(reliable=True, transient_local=False, depth=100)


@dataclass
class BagFrame:
    rgb_u8: np.ndarray
    rgb_stamp_ns: int
    depth_m: np.ndarray
    depth_stamp_ns: int
    pose: np.ndarray | None = None  # (4, 4) world-from-camera ground truth of the camera's pose_frame
    pose_stamp_ns: int | None = None  # when that pose held (the ground truth's own time)


Transform = tuple[str, str, np.ndarray, np.ndarray]  # parent, child, rotation (3, 3), translation (3,)


@dataclass
class Camera:
    """A sequence's sensor: the intrinsics of its images and where their frames are.

    ``rgb_k`` / ``depth_k`` give K (ROS, 0-based pixels) at an image's width and height, and
    ``rgb_d`` / ``depth_d`` the images' plumb_bob distortion (k1, k2, p1, p2, k3); ``depth_frame`` is
    the depth images' frame (RGB_FRAME where the set registers depth to the RGB camera);
    ``transforms`` are the static frames (``/tf_static``); ``pose_frame`` is the frame whose pose in
    the world the ground truth gives.
    """

    rgb_k: Callable[[int, int], np.ndarray]
    depth_k: Callable[[int, int], np.ndarray]
    depth_frame: str
    transforms: list[Transform]
    pose_frame: str = RGB_FRAME
    rgb_d: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    depth_d: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)


def nyu_camera() -> Camera:
    """The NYU Kinect: depth registered to the RGB camera, the IR camera placed by the calibration."""
    return Camera(lambda w, h: camera_matrix_ros("rgb", w, h), lambda w, h: camera_matrix_ros("rgb", w, h),
                  RGB_FRAME, camera_transforms())


@dataclass
class Sequence:
    """Frames to convert: how many, and a function that yields them (read lazily).

    ``poses``: its frames carry ground-truth poses (the bag gets the pose topics). ``max_skew_ns``:
    how far before its depth stamp a frame's other stamps (RGB, pose) may lie, for writing them in
    time order; frames come in order of depth stamp.
    """

    description: str
    count: int
    frames: Callable[[], Iterator[BagFrame]]
    camera: Camera = field(default_factory=lambda: nyu_camera())
    poses: bool = False
    max_skew_ns: int = 0


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
        indices = [i for i in indices if names and names[i] == scene]
        if not indices:
            raise DataError(f"{str(mat_file)!r} has no frames of scene {scene!r}")

    def frames() -> Iterator[BagFrame]:
        for k, i in enumerate(indices):
            frame = reader[i]
            stamp = seconds_to_ns(LABELED_START_S + k / LABELED_RATE_HZ)
            yield BagFrame(frame.rgb_u8, stamp, frame.depth_m, stamp)

    return Sequence(f"{len(indices)} labeled frames of {path.name}", len(indices), frames)


def detected_sequence(path: str | os.PathLike, scene: str | None = None) -> Sequence:
    """Output of ``rgbd-vae synth`` in any of its layouts (TUM and 7-Scenes with the camera it rendered)."""
    from ..data.detect import detect_layout

    layout = detect_layout(path)
    if layout == "nyu-raw":
        return nyu_raw_sequence(path, scene)
    if layout == "nyu-mat":
        return nyu_mat_sequence(path, scene=scene)
    if layout in ("tum", "7scenes"):
        from .slam import seven_scenes_sequence, synth_camera, tum_sequence

        if not _made_by_synth(Path(path), layout):
            raise DataError(f"{str(path)!r} is a {layout} sequence that rgbd-vae synth did not write (no synth.json "
                            f"beside it); convert it with bag from-{'tum' if layout == 'tum' else '7scenes'}")
        convert = tum_sequence if layout == "tum" else seven_scenes_sequence
        return convert(path, scene, camera=synth_camera(layout))
    raise DataError(f"{str(path)!r} is in the {layout} layout; expected the nyu-raw, nyu-mat, tum or 7scenes output "
                    "of rgbd-vae synth")


def _made_by_synth(path: Path, layout: str) -> bool:
    """Whether ``path`` (or the data set folder it is in: a scene, or a 7-Scenes seq-XX) is synth output."""
    import json

    from ..synth.generate import MARKER_NAME

    for folder in (path, path.parent, path.parent.parent):
        try:
            return json.loads((folder / MARKER_NAME).read_text()).get("layout") == layout
        except (OSError, ValueError, AttributeError):
            continue
    return False


def scaled_k(intrinsics: tuple[float, float, float, float], size: tuple[int, int], width: int,
             height: int) -> np.ndarray:
    """K (0-based pixels) of intrinsics (fx, fy, cx, cy) given at ``size`` = (width, height), at
    ``width`` x ``height``; pixel edges sit at -0.5 and W - 0.5."""
    fx, fy, cx, cy = intrinsics
    sx, sy = width / size[0], height / size[1]
    return np.array([[fx * sx, 0.0, (cx + 0.5) * sx - 0.5], [0.0, fy * sy, (cy + 0.5) * sy - 0.5], [0.0, 0.0, 1.0]])


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


def camera_info_message(k: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str,
                        distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)):
    """A pinhole camera of matrix ``k`` at ``width`` x ``height``, plumb_bob ``distortion``."""
    types = typestore().types
    k = np.asarray(k, dtype=np.float64)
    projection = np.hstack([k, np.zeros((3, 1))])
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[CAMERA_INFO](
        header=_header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.asarray(distortion, dtype=np.float64), k=k.reshape(-1), r=np.eye(3).reshape(-1), p=projection.reshape(-1),
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


def optical_transform(child: str) -> Transform:
    """An optical frame placed on camera_link (the same point, axes turned)."""
    return BASE_FRAME, child, _OPTICAL_FROM_LINK, np.zeros(3)


def _transform_stamped(stamp_ns: int, parent: str, child: str, rotation: np.ndarray, translation: np.ndarray):
    types = typestore().types
    x, y, z, w = _quaternion(rotation)
    return types["geometry_msgs/msg/TransformStamped"](
        header=_header(stamp_ns, parent), child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=float(translation[0]), y=float(translation[1]),
                                                           z=float(translation[2])),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)))


def tf_static_message(stamp_ns: int, transforms: list[Transform] | None = None):
    """The static frames (the NYU Kinect's unless ``transforms`` are given)."""
    transforms = camera_transforms() if transforms is None else transforms
    return typestore().types[TF_MESSAGE](
        transforms=[_transform_stamped(stamp_ns, *transform) for transform in transforms])


def _matrix(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, translation
    return matrix


def base_from_frame(transforms: list[Transform], frame: str) -> np.ndarray:
    """camera_link-from-``frame`` (4x4) through the static ``transforms``."""
    parents = {child: (parent, _matrix(rotation, translation)) for parent, child, rotation, translation in transforms}
    result = np.eye(4)
    while frame != BASE_FRAME:
        if frame not in parents:
            raise ValueError(f"frame {frame!r} is not below {BASE_FRAME} in the static transforms")
        frame, step = parents.pop(frame)  # popped: a cycle ends in the error above
        result = step @ result
    return result


def pose_messages(pose: np.ndarray, stamp_ns: int, camera: Camera) -> tuple[object, object]:
    """PoseStamped of ``camera.pose_frame`` in the world (the ground truth as given), and the /tf
    TFMessage placing camera_link in the world so that the static frames put ``pose_frame`` there."""
    types = typestore().types
    x, y, z, w = _quaternion(pose[:3, :3])
    t = pose[:3, 3]
    pose_msg = types[POSE_STAMPED](
        header=_header(stamp_ns, WORLD_FRAME),
        pose=types["geometry_msgs/msg/Pose"](
            position=types["geometry_msgs/msg/Point"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            orientation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)))
    world_from_base = pose @ np.linalg.inv(base_from_frame(camera.transforms, camera.pose_frame))
    tf = types[TF_MESSAGE](transforms=[_transform_stamped(stamp_ns, WORLD_FRAME, BASE_FRAME, world_from_base[:3, :3],
                                                          world_from_base[:3, 3])])
    return pose_msg, tf


def _check_frame(frame: BagFrame, index: int) -> None:
    if frame.rgb_u8.dtype != np.uint8 or frame.rgb_u8.ndim != 3 or frame.rgb_u8.shape[2] != 3:
        raise DataError(f"frame {index}: RGB is {frame.rgb_u8.dtype} {frame.rgb_u8.shape}; expected uint8 (H, W, 3)")
    if frame.depth_m is None or frame.depth_m.shape != frame.rgb_u8.shape[:2]:
        shape = None if frame.depth_m is None else frame.depth_m.shape
        raise DataError(f"frame {index}: depth {shape} does not match RGB {frame.rgb_u8.shape[:2]}")
    if frame.pose is not None:
        pose = np.asarray(frame.pose)
        rotation = pose[:3, :3] if pose.shape == (4, 4) else None
        if (rotation is None or not np.isfinite(pose).all() or frame.pose_stamp_ns is None
                or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0):
            raise DataError(f"frame {index}: ground-truth pose is not a rigid 4x4 camera-to-world transform "
                            "with a time; expected a rotation and a translation")


def _frame_messages(frame: BagFrame, camera: Camera) -> list[tuple[int, str, str, object]]:
    """(stamp, topic, type, message) of one frame."""
    height, width = frame.depth_m.shape
    depth = np.asarray(frame.depth_m, dtype=np.float32)
    rgb_k, depth_k = camera.rgb_k(width, height), camera.depth_k(width, height)
    messages = [
        (frame.depth_stamp_ns, DEPTH_TOPIC, IMAGE,
         image_message(depth, "32FC1", frame.depth_stamp_ns, camera.depth_frame)),
        (frame.depth_stamp_ns, DEPTH_INFO_TOPIC, CAMERA_INFO,
         camera_info_message(depth_k, width, height, frame.depth_stamp_ns, camera.depth_frame, camera.depth_d)),
        (frame.rgb_stamp_ns, RGB_TOPIC, IMAGE, image_message(frame.rgb_u8, "rgb8", frame.rgb_stamp_ns, RGB_FRAME)),
        (frame.rgb_stamp_ns, RGB_INFO_TOPIC, CAMERA_INFO,
         camera_info_message(rgb_k, width, height, frame.rgb_stamp_ns, RGB_FRAME, camera.rgb_d)),
    ]
    if frame.pose is not None:
        pose_msg, tf = pose_messages(np.asarray(frame.pose, dtype=np.float64), frame.pose_stamp_ns, camera)
        messages += [(frame.pose_stamp_ns, GROUND_TRUTH_TOPIC, POSE_STAMPED, pose_msg),
                     (frame.pose_stamp_ns, TF_TOPIC, TF_MESSAGE, tf)]
    return messages


def write_sequence(sequence: Sequence, out: str | os.PathLike, storage: str = "mcap",
                   progress: Callable[[], None] | None = None, overwrite: bool = False) -> dict[str, int]:
    """Write ``sequence`` as a rosbag2 at ``out`` (atomically); returns messages per topic.

    Messages are recorded in time order, as a recorder would have: each frame's wait in a small
    queue until no later frame can bring an earlier one (its depth stamp less ``max_skew_ns``).
    """
    if sequence.count < 1:
        raise DataError(f"{sequence.description} has no frames; nothing to convert")
    camera = sequence.camera
    with write_bag(out, storage, overwrite=overwrite) as bag:
        bag.add_topic(TF_STATIC_TOPIC, TF_MESSAGE, LATCHED)
        for topic, msgtype in ((RGB_TOPIC, IMAGE), (RGB_INFO_TOPIC, CAMERA_INFO),
                               (DEPTH_TOPIC, IMAGE), (DEPTH_INFO_TOPIC, CAMERA_INFO)):
            bag.add_topic(topic, msgtype, SENSOR_QOS)
        if sequence.poses:
            bag.add_topic(GROUND_TRUTH_TOPIC, POSE_STAMPED, SENSOR_QOS)
            bag.add_topic(TF_TOPIC, TF_MESSAGE, TF_QOS)
        queue: list[tuple[int, int, str, str, object]] = []
        written_ns, order = -1, 0

        def flush(until_ns: int | None) -> None:
            nonlocal written_ns
            while queue and (until_ns is None or queue[0][0] <= until_ns):
                stamp_ns, _, topic, msgtype, message = heapq.heappop(queue)
                bag.write(topic, msgtype, stamp_ns, message)
                written_ns = stamp_ns

        for index, frame in enumerate(sequence.frames()):
            _check_frame(frame, index)
            if frame.pose is not None and not sequence.poses:
                raise DataError(f"frame {index} has a ground-truth pose but {sequence.description} was declared "
                                "without poses")
            messages = _frame_messages(frame, camera)
            if index == 0:  # the static frames come first: before anything a later frame may bring
                written_ns = min(min(m[0] for m in messages), frame.depth_stamp_ns - sequence.max_skew_ns)
                bag.write(TF_STATIC_TOPIC, TF_MESSAGE, written_ns, tf_static_message(written_ns, camera.transforms))
            if min(m[0] for m in messages) < written_ns:
                raise DataError(f"frame {index} is stamped before the frame ahead of it; expected increasing times")
            for stamp_ns, topic, msgtype, message in messages:
                heapq.heappush(queue, (stamp_ns, order, topic, msgtype, message))
                order += 1
            flush(frame.depth_stamp_ns - sequence.max_skew_ns)
            kill_point("bag-frame")
            if progress:
                progress()
        flush(None)
        counts = dict(bag.counts)
    return counts
