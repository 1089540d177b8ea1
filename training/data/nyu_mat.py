"""NYU Depth V2 labeled file (``nyu_depth_v2_labeled.mat``, MATLAB v7.3 = HDF5) and ``splits.mat``.

h5py sees MATLAB's column-major arrays transposed: ``images`` is (N, 3, 640, 480) and
``depths`` / ``rawDepths`` are (N, 640, 480); each frame is transposed back to H x W.
``splits.mat`` (MATLAB v5) holds the official 1-based ``trainNdxs`` (795) and ``testNdxs`` (654).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .frame import FrameReader, RGBDFrame

LABELED_NAME = "nyu_depth_v2_labeled.mat"
SPLITS_NAME = "splits.mat"
_REQUIRED = ("images", "depths")


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(f"NYU labeled file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise DataError(f"{str(path)!r} is not a MATLAB v7.3 (HDF5) file: {exc}") from None


def _read_scenes(h5, count: int) -> list[str] | None:
    """The per-frame scene names of the ``scenes`` cell array, if the file has one."""
    if "scenes" not in h5:
        return None
    refs = np.asarray(h5["scenes"]).reshape(-1)
    if refs.size != count:
        raise DataError(f"'scenes' names {refs.size} frames but 'images' holds {count}")
    return ["".join(map(chr, np.asarray(h5[ref]).reshape(-1))) for ref in refs]


def read_splits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """0-based (train, test) frame indices from a ``splits.mat`` (MATLAB v5 or v7.3)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {str(path)!r} does not exist; the official split comes from splits.mat "
                        "beside the labeled .mat")
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    except NotImplementedError:  # v7.3 is HDF5
        with _open_h5(path) as h5:
            content = {key: np.asarray(h5[key]) for key in h5 if not key.startswith("#")}
    except Exception as exc:
        raise DataError(f"{str(path)!r} is not a readable MATLAB file: {exc}") from None
    missing = [key for key in ("trainNdxs", "testNdxs") if key not in content]
    if missing:
        raise DataError(f"split file {str(path)!r} lacks {', '.join(missing)}; expected trainNdxs and testNdxs")
    return tuple(np.asarray(content[key]).reshape(-1).astype(np.int64) - 1 for key in ("trainNdxs", "testNdxs"))


class NYULabeled(FrameReader):
    """Frames of the labeled .mat; ``split`` = 'train' | 'test' | None (all) using splits.mat."""

    def __init__(self, path: str | os.PathLike, split: str | None = None, splits_path: str | os.PathLike | None = None,
                 raw_depth: bool = False):
        self.path = Path(path)
        with _open_h5(self.path) as h5:
            missing = [key for key in _REQUIRED + (("rawDepths",) if raw_depth else ()) if key not in h5]
            if missing:
                raise DataError(f"NYU labeled file {str(self.path)!r} lacks {', '.join(map(repr, missing))}; "
                                "expected 'images', 'depths' and 'rawDepths'")
            images, depths = h5["images"], h5["depths"]
            if images.ndim != 4 or images.shape[1] != 3 or depths.shape != (images.shape[0],) + images.shape[2:]:
                raise DataError(f"{str(self.path)!r} has images {images.shape} and depths {depths.shape}; expected "
                                "(N, 3, W, H) and (N, W, H) as h5py shows MATLAB's 480x640x3xN and 480x640xN")
            count = images.shape[0]
            self.all_scenes = _read_scenes(h5, count)  # of every frame in the file, or None
        self.depth_key = "rawDepths" if raw_depth else "depths"
        self.indices = np.arange(count)
        if split is not None:
            if split not in ("train", "test"):
                raise DataError(f"split {split!r} is unknown; expected 'train' or 'test'")
            train, test = read_splits(splits_path or self.path.with_name(SPLITS_NAME))
            for name, idx in (("trainNdxs", train), ("testNdxs", test)):
                if idx.size and (idx.min() < 0 or idx.max() >= count):
                    raise DataError(f"{name} in splits.mat points outside the {count} frames of {self.path.name}")
            self._check_scenes_disjoint(train, test)
            self.indices = train if split == "train" else test
        self._h5 = None

    def _check_scenes_disjoint(self, train: np.ndarray, test: np.ndarray) -> None:
        if self.all_scenes is None:
            return
        shared = {self.all_scenes[i] for i in train} & {self.all_scenes[i] for i in test}
        if shared:
            raise DataError(f"scenes {sorted(shared)[:3]} are in both the train and the test split; "
                            "expected a split by scene")

    @property
    def frame_scenes(self) -> list[str] | None:
        """The scene of each frame of this reader (of its split), or None where the file names none."""
        return None if self.all_scenes is None else [self.all_scenes[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> RGBDFrame:
        if self._h5 is None:  # opened lazily so that DataLoader workers each get their own handle
            self._h5 = _open_h5(self.path)
        i = int(self.indices[index])
        rgb = np.ascontiguousarray(self._h5["images"][i].transpose(2, 1, 0))  # (3, W, H) -> (H, W, 3)
        depth = np.ascontiguousarray(self._h5[self.depth_key][i].T).astype(np.float32)
        depth[~(depth > 0)] = np.nan  # NYU marks missing readings with 0
        scene = self.all_scenes[i] if self.all_scenes else ""
        return RGBDFrame(rgb, depth, scene=scene)


    def __getstate__(self):
        return {**self.__dict__, "_h5": None}


def _matlab_header_text(kind: str) -> bytes:
    """The 116-byte text of a MATLAB file header; fixed so that the same input gives the same bytes."""
    text = f"MATLAB {kind} MAT-file, Platform: GLNXA64, Created by: rgbd-vae synth".encode()
    if kind == "7.3":
        text += b" HDF5 schema 1.00 ."
    return text.ljust(116, b" ")


def write_labeled(path: str | os.PathLike, images_hwc: np.ndarray, depths_m: np.ndarray,
                  raw_depths_m: np.ndarray, scenes: list[str]) -> None:
    """Write frames in the layout of ``nyu_depth_v2_labeled.mat`` (v7.3 with its 512-byte user block).

    ``images_hwc`` (N, H, W, 3) uint8; depths (N, H, W) metres with 0 where missing, as NYU stores them.
    """
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with h5py.File(tmp, "w", userblock_size=512, libver="earliest") as h5:
            def put(name, data, matlab_class):
                ds = h5.create_dataset(name, data=data, track_times=False)
                ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            put("images", np.ascontiguousarray(images_hwc.transpose(0, 3, 2, 1)), "uint8")
            put("depths", np.ascontiguousarray(depths_m.transpose(0, 2, 1), dtype=np.float32), "single")
            put("rawDepths", np.ascontiguousarray(raw_depths_m.transpose(0, 2, 1), dtype=np.float32), "single")
            refs_group = h5.create_group("#refs#", track_order=False)
            refs = []
            for i, scene in enumerate(scenes):
                chars = refs_group.create_dataset(f"s{i}", data=np.array([[ord(c)] for c in scene], np.uint16),
                                                  track_times=False)
                chars.attrs["MATLAB_class"] = np.bytes_("char")
                refs.append(chars.ref)
            scene_refs = h5.create_dataset("scenes", data=np.array([refs], dtype=h5py.ref_dtype), track_times=False)
            scene_refs.attrs["MATLAB_class"] = np.bytes_("cell")
        with open(tmp, "r+b") as f:
            f.write(_matlab_header_text("7.3") + b"\x00" * 8 + b"\x00\x02IM")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_splits(train_indices: np.ndarray, test_indices: np.ndarray) -> bytes:
    """``splits.mat`` bytes (MATLAB v5) from 0-based indices, with a fixed header."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"trainNdxs": (np.asarray(train_indices) + 1).reshape(-1, 1).astype(np.float64),
                              "testNdxs": (np.asarray(test_indices) + 1).reshape(-1, 1).astype(np.float64)})
    blob = buffer.getvalue()
    return _matlab_header_text("5.0") + blob[116:]
