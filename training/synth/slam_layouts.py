"""Synthetic scenes in the layouts SLAM users bring: TUM RGB-D and Microsoft 7-Scenes, each with the
generator's ground-truth camera poses, so the real readers are exercised on files in the real layout.

TUM: depth registered to the RGB camera (as TUM's is), 1/5000 m, poses of the RGB camera at the
depth stamps. 7-Scenes: depth as the depth (IR) camera sees it, unregistered (as 7-Scenes' is),
millimetres with 65535 where the sensor has no reading, poses of the depth camera.
Each scene appears whole (staged and renamed) and ``synth.json`` is written last.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rgbd_vae_ros.files import atomic_dir, atomic_write_bytes, atomic_write_text

from ..data import seven_scenes, tum
from ..data.nyu_calibration import MAX_DEPTH_M
from ..data.png_files import encode_png
from ..faults import kill_point
from .generate import _RGB_FROM_IR_R, _RGB_FROM_IR_T, _begin, _mark_complete, generate_scene, scene_name, style_setting


def depth_to_units(depth_m: np.ndarray, units_per_m: float, no_reading: int) -> np.ndarray:
    """Metres to a set's uint16 units; beyond the Kinect's range or the format's, ``no_reading``."""
    depth_m = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(depth_m) & (depth_m < MAX_DEPTH_M)
    units = np.rint(np.where(valid, depth_m, 0.0) * units_per_m)
    valid &= (units > 0) & (units < 65535)
    return np.where(valid, units, no_reading).astype(np.uint16)


def ir_pose(pose_rgb: np.ndarray) -> np.ndarray:
    """World-from-depth-camera of a world-from-RGB-camera pose (the NYU Kinect's rigid offset)."""
    pose = np.eye(4)
    pose[:3, :3] = pose_rgb[:3, :3] @ _RGB_FROM_IR_R
    pose[:3, 3] = pose_rgb[:3, 3] + pose_rgb[:3, :3] @ _RGB_FROM_IR_T
    return pose


def _write_scenes(out: Path, layout: str, scenes: int, frames: int, seed: int, width: int, height: int,
                  write_scene, progress, style: str = "train") -> list[Path]:
    style_setting(style)
    _begin(out)
    folders = []
    for s in range(scenes):
        folder = out / scene_name(s)
        with atomic_dir(folder) as staging:
            write_scene(staging, generate_scene(seed, s, frames, width, height, style=style), progress)
        folders.append(folder)
    _mark_complete(out, layout, scenes=scenes, frames=frames, seed=seed, width=width, height=height,
                   **style_setting(style))
    return folders


def _frame_done(progress) -> None:
    kill_point("synth-frame")
    if progress:
        progress()


def _write_tum_sequence(folder: Path, frames, progress) -> None:
    rgb_lines, depth_lines, pose_lines = [], [], []
    for frame in frames:
        rgb_name, depth_name = f"rgb/{frame.rgb_stamp_s:.6f}.png", f"depth/{frame.depth_stamp_s:.6f}.png"
        atomic_write_bytes(folder / rgb_name, encode_png(frame.rgb_u8))
        depth_units = depth_to_units(frame.depth_rgb_m, tum.DEPTH_UNITS_PER_M, 0)
        atomic_write_bytes(folder / depth_name, encode_png(depth_units))
        rgb_lines.append(f"{frame.rgb_stamp_s:.6f} {rgb_name}")
        depth_lines.append(f"{frame.depth_stamp_s:.6f} {depth_name}")
        pose_lines.append(f"{frame.depth_stamp_s:.6f} " + " ".join(f"{v:.9f}" for v in tum.tum_from_pose(frame.pose_rgb)))
        _frame_done(progress)
    header = "# written by rgbd-vae synth\n"
    atomic_write_text(folder / "rgb.txt", f"# color images\n{header}# timestamp filename\n" + "\n".join(rgb_lines) + "\n")
    atomic_write_text(folder / "depth.txt", f"# depth maps\n{header}# timestamp filename\n" + "\n".join(depth_lines) + "\n")
    atomic_write_text(folder / tum.GROUNDTRUTH_NAME, f"# ground truth trajectory\n{header}"
                      "# timestamp tx ty tz qx qy qz qw\n" + "\n".join(pose_lines) + "\n")


def _write_7scenes_sequence(folder: Path, frames, progress) -> None:
    sequence = folder / "seq-01"
    for k, frame in enumerate(frames):
        stem = sequence / f"frame-{k:06d}"
        atomic_write_bytes(stem.with_name(stem.name + ".color.png"), encode_png(frame.rgb_u8))
        depth_units = depth_to_units(frame.depth_ir_m, seven_scenes.DEPTH_UNITS_PER_M, 65535)
        atomic_write_bytes(stem.with_name(stem.name + ".depth.png"), encode_png(depth_units))
        pose = ir_pose(frame.pose_rgb)
        atomic_write_text(stem.with_name(stem.name + ".pose.txt"),
                          "".join(" ".join(f"{v:.9e}" for v in row) + "\n" for row in pose))
        _frame_done(progress)


def write_tum(out: str | os.PathLike, scenes: int, frames: int, seed: int = 0, width: int = 640, height: int = 480,
              progress=None, style: str = "train") -> list[Path]:
    """One TUM RGB-D sequence folder per scene: rgb/, depth/, rgb.txt, depth.txt, groundtruth.txt."""
    return _write_scenes(Path(out), "tum", scenes, frames, seed, width, height, _write_tum_sequence, progress, style)


def write_7scenes(out: str | os.PathLike, scenes: int, frames: int, seed: int = 0, width: int = 640,
                  height: int = 480, progress=None, style: str = "train") -> list[Path]:
    """One 7-Scenes scene folder per scene, holding ``seq-01`` of frame-XXXXXX.{color,depth}.png, .pose.txt."""
    return _write_scenes(Path(out), "7scenes", scenes, frames, seed, width, height, _write_7scenes_sequence, progress,
                         style)
