"""TUM RGB-D sequences: ``rgb.txt`` and ``depth.txt`` ("timestamp filename"), ``groundtruth.txt``
("timestamp tx ty tz qx qy qz qw", camera-to-world), 16-bit depth PNGs in 1/5000 m, 0 = no reading.

RGB and depth are paired by time stamp as TUM's ``associate.py`` does (closest pairs first, each
image used once, at most 0.02 s apart). TUM's depth images are already registered to the colour
camera, so the frame's intrinsics are the colour camera's (from TUM's calibration table for the
Freiburg 1/2/3 sensors named in the sequence folder; unknown otherwise).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame
from .png_files import inside, read_depth_u16, read_rgb, read_text, split_sequences, units_to_m

DEPTH_UNITS_PER_M = 5000.0
MAX_DIFFERENCE_S = 0.02  # associate.py's default
INDEX_NAMES = ("rgb.txt", "depth.txt")
GROUNDTRUTH_NAME = "groundtruth.txt"
# TUM's published colour-camera calibration (fx, fy, cx, cy) per sensor
FREIBURG_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
# and its distortion (d0..d4 = k1, k2, p1, p2, k3, plumb_bob); Freiburg 3's images come undistorted
FREIBURG_DISTORTION = {
    "freiburg1": (0.2624, -0.9531, -0.0054, 0.0026, 1.1633),
    "freiburg2": (0.2312, -0.7849, -0.0033, -0.0001, 0.9172),
    "freiburg3": (0.0, 0.0, 0.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class TUMFrame:
    sequence: str
    rgb_path: Path
    depth_path: Path
    rgb_stamp_s: float
    depth_stamp_s: float
    pose: np.ndarray | None
    pose_stamp_s: float | None = None  # the ground-truth row the pose comes from


def is_tum_sequence(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in INDEX_NAMES)


def tum_sequences(root: Path) -> list[Path]:
    """``root`` if it is a sequence folder, else its sequence folders (hidden ones are staging)."""
    if is_tum_sequence(root):
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and is_tum_sequence(p))


def _rows(path: Path, columns: int, what: str) -> list[list[str]]:
    """The data lines of a TUM text file, split on whitespace; '#' lines are comments."""
    rows = []
    for number, line in enumerate(read_text(path, what).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < columns:
            raise DataError(f"{path.name} line {number} is {line.strip()!r}; expected {columns} fields")
        try:
            float(fields[0])
        except ValueError:
            raise DataError(f"{path.name} line {number} starts with {fields[0]!r}; expected a time stamp in "
                            "seconds") from None
        rows.append(fields)
    return rows


def read_index(sequence: Path, name: str) -> list[tuple[float, Path]]:
    """(stamp, file) of ``rgb.txt`` or ``depth.txt``, sorted by stamp."""
    rows = _rows(sequence / name, 2, f"TUM index {name}")
    return sorted((float(stamp), inside(sequence, file, f"{sequence.name}/{name}")) for stamp, file, *_ in rows)


def read_groundtruth(sequence: Path) -> tuple[np.ndarray, np.ndarray]:
    """Stamps (N,) and camera-to-world poses (N, 4, 4) of ``groundtruth.txt``; none when it is absent."""
    path = sequence / GROUNDTRUTH_NAME
    if not path.is_file():
        return np.zeros(0), np.zeros((0, 4, 4))
    rows = _rows(path, 8, "TUM ground truth")
    try:
        values = np.array([row[:8] for row in rows], dtype=np.float64).reshape(-1, 8)
    except ValueError:
        raise DataError(f"{path.name} in {str(sequence)!r} holds a line that is not 8 numbers; expected "
                        "'timestamp tx ty tz qx qy qz qw'") from None
    poses = np.array([pose_from_tum(row[1:]) for row in values]).reshape(-1, 4, 4)
    order = np.argsort(values[:, 0], kind="stable")
    return values[order, 0], poses[order]


def pose_from_tum(values) -> np.ndarray:
    """(tx, ty, tz, qx, qy, qz, qw) to a 4x4 camera-to-world matrix."""
    t, q = np.asarray(values[:3], dtype=np.float64), np.asarray(values[3:7], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise DataError(f"ground-truth quaternion {tuple(q)!r} has no length; expected a unit quaternion")
    x, y, z, w = q / norm
    pose = np.eye(4)
    pose[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    pose[:3, 3] = t
    return pose


def tum_from_pose(pose: np.ndarray) -> tuple[float, ...]:
    """A 4x4 camera-to-world matrix as (tx, ty, tz, qx, qy, qz, qw), qw >= 0."""
    r = np.asarray(pose, dtype=np.float64)[:3, :3]
    # the largest of the four diagonal combinations gives a well-conditioned square root
    k = np.array([[r[0, 0] - r[1, 1] - r[2, 2], r[1, 0] + r[0, 1], r[2, 0] + r[0, 2], r[2, 1] - r[1, 2]],
                  [r[1, 0] + r[0, 1], r[1, 1] - r[0, 0] - r[2, 2], r[2, 1] + r[1, 2], r[0, 2] - r[2, 0]],
                  [r[2, 0] + r[0, 2], r[2, 1] + r[1, 2], r[2, 2] - r[0, 0] - r[1, 1], r[1, 0] - r[0, 1]],
                  [r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], r[0, 0] + r[1, 1] + r[2, 2]]]) / 3
    eigenvalues, eigenvectors = np.linalg.eigh(k)
    q = eigenvectors[:, int(np.argmax(eigenvalues))]
    q = -q if q[3] < 0 else q
    return (*(float(v) for v in pose[:3, 3]), *(float(v) for v in q))


def associate(first: np.ndarray, second: np.ndarray, max_difference_s: float = MAX_DIFFERENCE_S) -> list[tuple[int, int]]:
    """Index pairs (i, j) of sorted stamps, closest first, each used once, at most ``max_difference_s`` apart."""
    candidates = []
    for i, stamp in enumerate(first):
        low = np.searchsorted(second, stamp - max_difference_s, side="left")
        high = np.searchsorted(second, stamp + max_difference_s, side="right")
        candidates += [(abs(stamp - second[j]), i, j) for j in range(low, high) if abs(stamp - second[j]) < max_difference_s]
    used_first, used_second, pairs = set(), set(), []
    for _, i, j in sorted(candidates):
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def _sequence_frames(sequence: Path) -> list[TUMFrame]:
    rgb, depth = read_index(sequence, "rgb.txt"), read_index(sequence, "depth.txt")
    gt_stamps, gt_poses = read_groundtruth(sequence)
    rgb_stamps, depth_stamps = np.array([s for s, _ in rgb]), np.array([s for s, _ in depth])
    frames = []
    for i, j in associate(rgb_stamps, depth_stamps):
        pose = pose_stamp = None
        if len(gt_stamps):
            nearest = int(np.argmin(np.abs(gt_stamps - depth_stamps[j])))
            if abs(gt_stamps[nearest] - depth_stamps[j]) < MAX_DIFFERENCE_S:
                pose, pose_stamp = gt_poses[nearest], float(gt_stamps[nearest])
        frames.append(TUMFrame(sequence.name, rgb[i][1], depth[j][1], rgb[i][0], depth[j][0], pose, pose_stamp))
    return frames


def freiburg_sensor(sequence: str) -> str | None:
    """'freiburg1', 'freiburg2' or 'freiburg3': the sensor a sequence's name mentions, else None."""
    match = re.search(r"freiburg[123]", sequence)
    return match.group(0) if match else None


def freiburg_intrinsics(sequence: str) -> tuple[float, float, float, float] | None:
    """(fx, fy, cx, cy) at 640x480 of the Freiburg sensor a sequence's name mentions, else None."""
    sensor = freiburg_sensor(sequence)
    return FREIBURG_INTRINSICS[sensor] if sensor else None


class TUMSequences(FrameReader):
    """Associated RGB-D frames of a TUM sequence folder, or of a folder of them."""

    def __init__(self, root: str | os.PathLike, split: str | None = None):
        root = Path(root)
        if not root.exists():
            raise DataError(f"TUM RGB-D data {str(root)!r} does not exist")
        sequences = tum_sequences(root)
        if not sequences:
            raise DataError(f"{str(root)!r} holds no TUM RGB-D sequence; expected folders with rgb.txt and depth.txt")
        self.root = root
        self.sequences = [p.name for p in sequences]
        chosen = set(split_sequences(self.sequences, split))
        self.frames = [f for p in sequences if p.name in chosen for f in _sequence_frames(p)]

    @property
    def frame_scenes(self) -> list[str]:
        return [f.sequence for f in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> RGBDFrame:
        f = self.frames[index]
        rgb = read_rgb(f.rgb_path)
        depth_m = units_to_m(read_depth_u16(f.depth_path), DEPTH_UNITS_PER_M)
        if depth_m.shape != rgb.shape[:2]:
            raise DataError(f"{f.depth_path.name} is {depth_m.shape[1]}x{depth_m.shape[0]} but {f.rgb_path.name} is "
                            f"{rgb.shape[1]}x{rgb.shape[0]}; expected registered images of equal size")
        return RGBDFrame(rgb, depth_m, scene=f.sequence, stamp_s=f.depth_stamp_s,
                         pose=None if f.pose is None else f.pose.copy(), intrinsics=freiburg_intrinsics(f.sequence))
