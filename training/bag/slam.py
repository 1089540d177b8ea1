"""TUM RGB-D and Microsoft 7-Scenes sequences to a rosbag2, with their ground-truth poses (SPEC §6, §9).

The frames come from the data readers (``training/data/tum.py``, ``seven_scenes.py``) and go through
the NYU converter's writer (``convert.write_sequence``): the same topics, encodings, frame ids,
atomic output and refusals, plus ``/ground_truth/pose`` and ``/tf``.

- TUM: depth-primary, as the reader pairs them: each depth image with the RGB image and the
  ground-truth row nearest in time (within 0.02 s; a frame whose ground truth is further away has no
  pose). Stamps are the set's own (RGB, depth and ground-truth rows each their own time). Depth is
  registered to the RGB camera (as TUM's is), so both images are in ``camera_rgb_optical_frame``,
  which is what the ground truth places in the world. Intrinsics and distortion: TUM's calibration
  of the Freiburg 1/2/3 sensor that the sequence folder's name names, or ``intrinsics`` given (of
  images without distortion).
- 7-Scenes: no times, so frame ``frame-XXXXXX`` is stamped XXXXXX / rate (30 Hz) after a fixed start. Depth
  is not registered to colour (the set has no calibration between its cameras): depth is in
  ``camera_depth_optical_frame``, which the poses place in the world, and colour stays in
  ``camera_rgb_optical_frame`` with no transform to it. Intrinsics: the set's suggested Kinect
  defaults for both cameras (scaled to the image size), or ``intrinsics`` given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np

from ..data.errors import DataError
from .convert import (
    DEPTH_FRAME,
    LABELED_START_S,
    RGB_FRAME,
    BagFrame,
    Camera,
    Sequence,
    optical_transform,
    scaled_k,
    seconds_to_ns,
)

SEVEN_SCENES_RATE_HZ = 30.0
SEVEN_SCENES_START_S = LABELED_START_S  # sets without times all start here

Intrinsics = tuple[float, float, float, float]


def _check_intrinsics(intrinsics: Intrinsics) -> Intrinsics:
    values = tuple(float(v) for v in intrinsics)
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
        raise DataError(f"intrinsics {tuple(intrinsics)!r} are not (fx, fy, cx, cy) with finite values and "
                        "positive focal lengths")
    return values


def _given_k(intrinsics: Intrinsics):
    """K of intrinsics given at the images' own size (whatever it is)."""
    fx, fy, cx, cy = intrinsics
    k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return lambda width, height: k


def _pick(names: list[str], scene: str | None, source: str | os.PathLike, kind: str) -> str:
    """The one sequence to convert: ``scene``, or the only one there is."""
    if scene is not None:
        if scene not in names:
            raise DataError(f"{str(source)!r} has no {kind} sequence {scene!r}; it has {', '.join(names[:6])}"
                            f"{', ...' if len(names) > 6 else ''}")
        return scene
    if len(names) > 1:
        raise DataError(f"{str(source)!r} holds {len(names)} {kind} sequences ({', '.join(names[:4])}"
                        f"{', ...' if len(names) > 4 else ''}); a bag holds one sequence, so pick one with "
                        "--scene NAME or give its folder")
    return names[0]


def tum_sequence(path: str | os.PathLike, scene: str | None = None, intrinsics: Intrinsics | None = None,
                 camera: Camera | None = None) -> Sequence:
    """One TUM RGB-D sequence folder (or the one named ``scene`` of a folder of them); ``camera``
    replaces the set's own (the one ``rgbd-vae synth`` rendered)."""
    from ..data.tum import FREIBURG_DISTORTION, FREIBURG_INTRINSICS, MAX_DIFFERENCE_S, TUMSequences, freiburg_sensor

    reader = TUMSequences(path)
    name = _pick(reader.sequences, scene, path, "TUM RGB-D")
    indices = [i for i, f in enumerate(reader.frames) if f.sequence == name]
    if not indices:
        raise DataError(f"TUM sequence {name!r} has no depth image with an RGB image within {MAX_DIFFERENCE_S:g} s "
                        "of it; nothing to convert")
    indices.sort(key=lambda i: reader.frames[i].depth_stamp_s)  # depth-primary: in order of depth time
    if camera is None:
        distortion = (0.0,) * 5
        if intrinsics is not None:
            k = _given_k(_check_intrinsics(intrinsics))
        else:
            sensor = freiburg_sensor(name)
            if sensor is None:
                raise DataError(f"TUM sequence {name!r} names no Freiburg sensor (freiburg1, freiburg2 or freiburg3) "
                                "whose calibration would apply; give the camera's intrinsics with --intrinsics FX FY "
                                "CX CY")
            k = lambda width, height: scaled_k(FREIBURG_INTRINSICS[sensor], (640, 480), width, height)  # noqa: E731
            distortion = FREIBURG_DISTORTION[sensor]
        # registered depth is resampled onto the (distorted) RGB image: it shares K and D
        camera = Camera(k, k, RGB_FRAME, [optical_transform(RGB_FRAME)], pose_frame=RGB_FRAME, rgb_d=distortion,
                        depth_d=distortion)
    with_pose = sum(reader.frames[i].pose is not None for i in indices)

    def frames() -> Iterator[BagFrame]:
        for i in indices:
            f, frame = reader.frames[i], reader[i]
            yield BagFrame(frame.rgb_u8, seconds_to_ns(f.rgb_stamp_s), frame.depth_m, seconds_to_ns(f.depth_stamp_s),
                           pose=frame.pose,
                           pose_stamp_ns=None if f.pose_stamp_s is None else seconds_to_ns(f.pose_stamp_s))

    poses = f"{with_pose} with ground truth" if with_pose else "no ground truth"
    return Sequence(f"TUM sequence {name} ({len(indices)} frames, {poses})", len(indices), frames, camera,
                    poses=with_pose > 0, max_skew_ns=seconds_to_ns(MAX_DIFFERENCE_S))


def seven_scenes_sequence(path: str | os.PathLike, scene: str | None = None, rate_hz: float = SEVEN_SCENES_RATE_HZ,
                          intrinsics: Intrinsics | None = None, camera: Camera | None = None) -> Sequence:
    """One 7-Scenes sequence (``<scene>/seq-XX``; ``scene`` names it where ``path`` holds several);
    ``camera`` replaces the set's own (the one ``rgbd-vae synth`` rendered)."""
    from ..data.seven_scenes import KINECT_INTRINSICS, KINECT_SIZE, SevenScenes

    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DataError(f"frame rate {rate_hz!r} Hz is not a positive number")
    reader = SevenScenes(path)
    names = list(dict.fromkeys(reader.frame_scenes))
    if scene is not None and scene not in names:  # "seq-02" for "chess/seq-02" where that is unambiguous
        matches = [n for n in names if n.split("/")[-1] == scene]
        if len(matches) > 1:
            raise DataError(f"{str(path)!r} has {len(matches)} sequences named {scene!r} ({', '.join(matches[:4])}); "
                            "give --scene as SCENE/seq-XX")
        scene = matches[0] if matches else scene
    name = _pick(names, scene, path, "7-Scenes")
    indices = [i for i, f in enumerate(reader.frames) if f.sequence == name]
    if camera is None:
        if intrinsics is not None:
            k = _given_k(_check_intrinsics(intrinsics))
        else:
            k = lambda width, height: scaled_k(KINECT_INTRINSICS, KINECT_SIZE, width, height)  # noqa: E731
        camera = Camera(k, k, DEPTH_FRAME, [optical_transform(DEPTH_FRAME)], pose_frame=DEPTH_FRAME)

    def frames() -> Iterator[BagFrame]:
        for i in indices:
            frame = reader[i]
            stamp_ns = seconds_to_ns(SEVEN_SCENES_START_S + reader.frames[i].number / rate_hz)
            yield BagFrame(frame.rgb_u8, stamp_ns, frame.depth_m, stamp_ns, pose=frame.pose, pose_stamp_ns=stamp_ns)

    return Sequence(f"7-Scenes sequence {name} ({len(indices)} frames at {rate_hz:g} Hz)", len(indices), frames,
                    camera, poses=True)


def synth_camera(layout: str) -> Camera:
    """The camera ``rgbd-vae synth`` renders TUM / 7-Scenes layouts with: the NYU Kinect's RGB camera,
    depth registered to it (TUM), or seen by its IR camera and unregistered (7-Scenes)."""
    from ..data.nyu_calibration import camera_matrix_ros

    def rgb(w, h):
        return camera_matrix_ros("rgb", w, h)

    def ir(w, h):
        return camera_matrix_ros("depth", w, h)

    if layout == "tum":
        return Camera(rgb, rgb, RGB_FRAME, [optical_transform(RGB_FRAME)], pose_frame=RGB_FRAME)
    return Camera(rgb, ir, DEPTH_FRAME, [optical_transform(DEPTH_FRAME)], pose_frame=DEPTH_FRAME)
