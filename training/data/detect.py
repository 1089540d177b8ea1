"""``--data PATH``: pick the reader from what the file or folder holds (SPEC §7.1)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError


def detect_layout(path: str | os.PathLike) -> str:
    """One of 'nyu-mat', 'nyu-raw', 'densedepth', 'mnist', 'image-folder'."""
    from .densedepth import is_densedepth
    from .image_folder import image_files
    from .mnist import is_mnist
    from .nyu_mat import LABELED_NAME
    from .nyu_raw import is_raw_scene, scene_folders

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
    if is_mnist(path):
        return "mnist"
    if image_files(path):
        return "image-folder"
    raise DataError(f"{str(path)!r} holds no data set layout this tool reads; expected a NYU labeled .mat, "
                    "NYU raw scene folders, the DenseDepth CSV layout, MNIST IDX files or a folder of images")


def open_dataset(path: str | os.PathLike, split: str | None = None):
    """A reader for ``path``; ``split`` 'train' / 'test' where the layout has one."""
    from .nyu_mat import LABELED_NAME

    path = Path(path)
    layout = detect_layout(path)
    if layout == "nyu-mat":
        from .nyu_mat import NYULabeled

        return NYULabeled(path / LABELED_NAME if path.is_dir() else path, split=split)
    if layout == "nyu-raw":
        from .nyu_raw import NYURawScenes
        from .splits import split_scenes

        reader = NYURawScenes(path)
        if split is None:
            return reader
        return NYURawScenes(path, scenes=split_scenes(reader.scenes)[split])
    if layout == "densedepth":
        from .densedepth import DenseDepthNYU

        return DenseDepthNYU(path, split=split or "train")
    if layout == "mnist":
        from .mnist import MNIST

        return MNIST(path, split=split or "train")
    from .image_folder import ImageFolder

    return ImageFolder(path)
