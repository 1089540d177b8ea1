"""Any folder of images (e.g. MS-COCO) for an RGB-only VAE: grey becomes RGB, no depth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageFolder(FrameReader):
    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"image folder {str(folder)!r} does not exist")
        self.files = image_files(folder)
        if not self.files:
            raise DataError(f"{str(folder)!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        # a name of each frame that adding or removing other images does not change (validation holds
        # frames back by it)
        self.frame_keys = [p.relative_to(folder).as_posix() for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> RGBDFrame:
        from PIL import Image, UnidentifiedImageError

        path = self.files[index]
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))  # grey and palette images become RGB
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{str(path)!r} is not a readable image: {exc}") from None
        return RGBDFrame(rgb, None, scene=path.parent.name)

