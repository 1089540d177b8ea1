"""``--data PATH``: pick the reader from what the file or folder holds (SPEC §7.1)."""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader

# layouts whose reader takes (path, split=...): module, class
_SEQUENCE_READERS = {"tum": (".tum", "TUMSequences"), "7scenes": (".seven_scenes", "SevenScenes"),
                     "sun-rgbd": (".sun_rgbd", "SUNRGBD")}


def detect_layout(path: str | os.PathLike) -> str:
    """One of 'nyu-mat', 'nyu-raw', 'densedepth', 'tum', '7scenes', 'sun-rgbd', 'rgbd-png', 'mnist',
    'image-folder'. A folder holding 16-bit depth PNGs is never an image folder."""
    from .densedepth import is_densedepth
    from .mnist import is_mnist
    from .nyu_mat import LABELED_NAME
    from .nyu_raw import is_raw_scene, scene_folders
    from .rgbd_png import is_rgbd_png_folder
    from .seven_scenes import sequence_folders
    from .sun_rgbd import sun_frames
    from .tum import tum_sequences

    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {str(path)!r} does not exist")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(1024)
        if b"\x89HDF\r\n\x1a\n" in head[:1024] and path.suffix == ".mat":
            return "nyu-mat"
        if head[:2] == b"PK":
            if is_densedepth(path):
                return "densedepth"
        raise DataError(f"{str(path)!r} is neither a NYU labeled .mat nor a DenseDepth zip")
    if (path / LABELED_NAME).is_file():
        return "nyu-mat"
    if is_raw_scene(path) or scene_folders(path):
        return "nyu-raw"
    if is_densedepth(path):
        return "densedepth"
    if tum_sequences(path):
        return "tum"
    if sequence_folders(path):
        return "7scenes"
    if sun_frames(path):
        return "sun-rgbd"
    if is_rgbd_png_folder(path):
        return "rgbd-png"
    if is_mnist(path):
        return "mnist"
    if _rgb_images(path):
        return "image-folder"
    raise DataError(f"{str(path)!r} holds no data set layout this tool reads; expected a NYU labeled .mat, "
                    "NYU raw scene folders, the DenseDepth CSV layout, TUM RGB-D or 7-Scenes sequences, SUN RGB-D "
                    "frames, rgb/ and depth/ PNG folders, MNIST IDX files or a folder of images")


def _rgb_images(path: Path) -> bool:
    """Whether ``path`` is a folder of RGB images; one holding 16-bit depth PNGs is refused, as its
    depth would otherwise be read as grey pictures."""
    from .image_folder import image_files
    from .png_files import is_depth_png

    files = image_files(path)
    depth = next((p for p in files if p.suffix.lower() == ".png" and is_depth_png(p)), None)
    if depth is not None:
        raise DataError(f"{str(path)!r} holds 16-bit depth PNGs ({str(depth.relative_to(path))!r}) in no RGB-D "
                        "layout this tool reads; expected TUM rgb.txt/depth.txt, 7-Scenes seq-XX folders, SUN RGB-D "
                        "frame folders or rgb/ beside depth/")
    return bool(files)


def open_dataset(path: str | os.PathLike, split: str | None = None, depth_scale: float | None = None,
                 intrinsics: tuple[float, float, float, float] | None = None):
    """A reader for ``path``; ``split`` 'train' / 'test' where the layout has one. ``depth_scale``
    (units per metre) and ``intrinsics`` (fx, fy, cx, cy) serve the generic rgb/ + depth/ folder."""
    from .nyu_mat import LABELED_NAME

    path = Path(path)
    layout = detect_layout(path)
    if split == "all" and layout in ("densedepth", "mnist"):  # two files, no scenes to split: read both
        return ConcatFrames([open_dataset(path, "train"), open_dataset(path, "test")])
    if split == "all" and layout == "nyu-mat":
        split = None
    if split not in (None, "all", "train", "test"):
        raise DataError(f"split {split!r} is unknown; expected 'train', 'test' or 'all'")
    if layout in _SEQUENCE_READERS:
        module, name = _SEQUENCE_READERS[layout]
        return getattr(import_module(module, __package__), name)(path, split=split)
    if layout == "rgbd-png":
        from .rgbd_png import RGBDPngFolder

        return RGBDPngFolder(path, depth_scale, intrinsics, split=split)
    if layout == "nyu-mat":
        from .nyu_mat import NYULabeled

        return NYULabeled(path / LABELED_NAME if path.is_dir() else path, split=split)
    if layout == "nyu-raw":
        from .nyu_raw import NYURawScenes
        from .splits import split_scenes

        reader = NYURawScenes(path)
        if split in (None, "all"):
            return reader
        if split not in ("train", "test"):
            raise DataError(f"split {split!r} is unknown; expected 'train', 'test' or 'all'")
        chosen = split_scenes(reader.scenes)[split]
        if not chosen:
            raise DataError(f"{str(path)!r} holds {len(reader.scenes)} NYU raw scene folder(s) of one room, so its "
                            f"{split} split is empty (scenes are split by room); use the split 'all' to read "
                            "every frame")
        return NYURawScenes(path, scenes=chosen)
    if layout == "densedepth":
        from .densedepth import DenseDepthNYU

        return DenseDepthNYU(path, split=split or "train")
    if layout == "mnist":
        from .mnist import MNIST

        return MNIST(path, split=split or "train")
    from .image_folder import ImageFolder

    return ImageFolder(path)


class ConcatFrames(FrameReader):
    """The frames of several readers, one after another."""

    def __init__(self, readers: list):
        self.readers = readers
        self.starts = np.cumsum([0] + [len(r) for r in readers])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.readers[part][index - int(self.starts[part])]
