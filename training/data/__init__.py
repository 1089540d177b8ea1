"""Data readers (SPEC §6): NYU Depth V2 labeled .mat and raw scene folders, DenseDepth CSV,
TUM RGB-D, Microsoft 7-Scenes, SUN RGB-D, rgb/ + depth/ PNG folders, MNIST IDX, image folders,
and layout detection for ``--data``.

Every reader yields :class:`RGBDFrame` objects (RGB uint8, depth in metres with NaN where
there is no reading; ``pose`` and ``intrinsics`` where the set has them) and raises
:class:`DataError` with one sentence on a bad file.
"""

from .errors import DataError
from .frame import RGBDFrame

__all__ = ["DataError", "RGBDFrame", "open_dataset"]


def open_dataset(path, **kwargs):
    """The reader for whatever layout ``path`` holds (imported lazily: see :mod:`.detect`)."""
    from .detect import open_dataset as _open

    return _open(path, **kwargs)
