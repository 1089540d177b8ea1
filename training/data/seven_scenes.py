"""Microsoft 7-Scenes: ``<scene>/seq-XX/frame-XXXXXX.color.png``, ``.depth.png`` (16-bit millimetres,
0 and 65535 = no reading) and ``.pose.txt`` (4x4 camera-to-world).

7-Scenes' depth is NOT registered to its colour images (the two Kinect cameras differ and the set
gives no calibration between them); this reader returns both as stored and invents no registration,
so depth and colour pixels correspond only roughly. Official splits (``TrainSplit.txt`` /
``TestSplit.txt`` beside the sequences, lines ``sequence1``...) are used where a scene has them;
otherwise sequences are split by name as the other layouts are. 7-Scenes has no time stamps.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .frame import FrameReader, RGBDFrame
from .png_files import read_depth_u16, read_matrix, read_rgb, read_text, split_sequences, units_to_m

DEPTH_UNITS_PER_M = 1000.0
NO_READING = (0, 65535)
# The set's own suggestion for both cameras, "default Kinect intrinsics" (fx, fy, cx, cy) at 640x480
KINECT_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
KINECT_SIZE = (640, 480)
_SEQUENCE = re.compile(r"^seq-(\d+)$")
_COLOR = re.compile(r"^frame-(\d+)\.color\.png$")
SPLIT_FILES = {"train": "TrainSplit.txt", "test": "TestSplit.txt"}


@dataclass(frozen=True)
class SevenScenesFrame:
    sequence: str  # "<scene>/seq-XX"
    color_path: Path

    @property
    def number(self) -> int:
        """The XXXXXX of frame-XXXXXX: the frame's index in its sequence (recorded at 30 Hz)."""
        return int(_COLOR.match(self.color_path.name).group(1))

    def sibling(self, kind: str) -> Path:
        return self.color_path.with_name(self.color_path.name.replace(".color.png", f".{kind}"))


def is_sequence(path: Path) -> bool:
    return bool(_SEQUENCE.match(path.name)) and path.is_dir() and any(_COLOR.match(p.name) for p in path.iterdir())


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def sequence_folders(root: Path) -> list[Path]:
    """The ``seq-XX`` folders at ``root``: a sequence, a scene of sequences, or a folder of scenes."""
    if not root.is_dir():
        return []
    if is_sequence(root):
        return [root]
    found = [p for p in _visible_dirs(root) if is_sequence(p)]
    if found:
        return found
    return [s for scene in _visible_dirs(root) for s in _visible_dirs(scene) if is_sequence(s)]


def _official_split(scene_dir: Path, split: str) -> set[str] | None:
    """Sequence names ('seq-01'...) the scene's TrainSplit/TestSplit file lists, None without one."""
    path = scene_dir / SPLIT_FILES[split]
    if not path.is_file():
        return None
    names = set()
    for number, line in enumerate(read_text(path, "7-Scenes split file").splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"sequence(\d+)", line.strip())
        if match is None:
            raise DataError(f"{path.name} line {number} is {line.strip()!r}; expected 'sequenceN'")
        names.add(f"seq-{int(match.group(1)):02d}")
    return names


def _choose(sequences: list[Path], split: str | None) -> list[Path]:
    if split in ("train", "test"):
        official = {d.parent: _official_split(d.parent, split) for d in sequences}
        if all(names is not None for names in official.values()):
            return [d for d in sequences if d.name in official[d.parent]]
    names = split_sequences([f"{d.parent.name}/{d.name}" for d in sequences], split)
    return [d for d in sequences if f"{d.parent.name}/{d.name}" in set(names)]


class SevenScenes(FrameReader):
    """Frames of 7-Scenes sequences: depth in the depth camera's frame, pose camera-to-world."""

    def __init__(self, root: str | os.PathLike, split: str | None = None):
        root = Path(root)
        if not root.exists():
            raise DataError(f"7-Scenes data {str(root)!r} does not exist")
        sequences = sequence_folders(root)
        if not sequences:
            raise DataError(f"{str(root)!r} holds no 7-Scenes sequence; expected seq-XX folders of "
                            "frame-XXXXXX.color.png files")
        self.root = root
        self.frames = [SevenScenesFrame(f"{d.parent.name}/{d.name}", p)
                       for d in _choose(sequences, split) for p in sorted(d.iterdir()) if _COLOR.match(p.name)]

    @property
    def frame_scenes(self) -> list[str]:
        return [f.sequence for f in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> RGBDFrame:
        f = self.frames[index]
        rgb = read_rgb(f.color_path)
        depth_m = units_to_m(read_depth_u16(f.sibling("depth.png")), DEPTH_UNITS_PER_M, NO_READING)
        pose = read_matrix(f.sibling("pose.txt"), (4, 4), "7-Scenes pose")
        return RGBDFrame(rgb, depth_m, scene=f.sequence, pose=pose)
