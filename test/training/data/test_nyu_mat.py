"""Generator -> labeled .mat + splits.mat -> reader returns the same arrays and the split by scene."""

import h5py
import numpy as np
import pytest
import scipy.io

from rgbd_vae_training.data import DataError
from rgbd_vae_training.data.nyu_mat import LABELED_NAME, SPLITS_NAME, NYULabeled, encode_splits, read_splits
from rgbd_vae_training.synth.generate import generate_scene, scene_name

SMALL = {"width": 160, "height": 120}


def test_file_has_the_real_layout(nyu_mat_dir):
    path = nyu_mat_dir / LABELED_NAME
    assert path.read_bytes()[:10] == b"MATLAB 7.3"
    with h5py.File(path, "r") as h5:
        assert h5["images"].shape == (6, 3, 160, 120) and h5["images"].dtype == np.uint8
        assert h5["depths"].shape == (6, 160, 120) and h5["rawDepths"].dtype == np.float32
        assert h5["images"].attrs["MATLAB_class"] == b"uint8"
    splits = scipy.io.loadmat(nyu_mat_dir / SPLITS_NAME)
    assert splits["trainNdxs"].shape[1] == 1 and splits["testNdxs"].min() >= 1  # MATLAB's 1-based columns


def test_reader_returns_the_generated_arrays(nyu_mat_dir):
    reader = NYULabeled(nyu_mat_dir / LABELED_NAME)
    frames = [f for s in range(3) for f in generate_scene(7, s, 2, **SMALL, synchronised=True)]
    assert len(reader) == len(frames) == 6
    for frame, truth in zip(reader, frames):
        np.testing.assert_array_equal(frame.rgb_u8, truth.rgb_u8)
        np.testing.assert_array_equal(frame.depth_m, truth.depth_rgb_m)
    raw = NYULabeled(nyu_mat_dir / LABELED_NAME, raw_depth=True)[0].depth_m
    assert np.isnan(raw).any()  # raw depth keeps its holes
    assert np.nanmedian(np.abs(raw - frames[0].depth_rgb_m)) < 0.02  # and agrees away from edges


def test_official_split_is_by_scene(nyu_mat_dir):
    train = NYULabeled(nyu_mat_dir / LABELED_NAME, split="train")
    test = NYULabeled(nyu_mat_dir / LABELED_NAME, split="test")
    assert len(train) + len(test) == 6 and len(test) > 0
    train_scenes = {f.scene for f in train}
    test_scenes = {f.scene for f in test}
    assert train_scenes and test_scenes and not train_scenes & test_scenes
    # the rooms the NYU raw reader holds out of the same scenes (split by room)
    from rgbd_vae_training.data.splits import split_scenes

    assert test_scenes == set(split_scenes([scene_name(s) for s in range(3)])["test"]) == {scene_name(1)}


def test_split_mixing_scenes_is_refused(nyu_mat_dir, tmp_path):
    (tmp_path / LABELED_NAME).write_bytes((nyu_mat_dir / LABELED_NAME).read_bytes())
    (tmp_path / SPLITS_NAME).write_bytes(encode_splits(np.array([0, 2, 4]), np.array([1, 3, 5])))
    with pytest.raises(DataError, match="in both the train and the test split"):
        NYULabeled(tmp_path / LABELED_NAME, split="train")


def test_missing_splits_file_is_named(nyu_mat_dir, tmp_path):
    (tmp_path / LABELED_NAME).write_bytes((nyu_mat_dir / LABELED_NAME).read_bytes())
    with pytest.raises(DataError, match="split file .*splits.mat' does not exist"):
        NYULabeled(tmp_path / LABELED_NAME, split="test")


@pytest.mark.parametrize("drop", ["images", "depths"])
def test_mat_missing_a_key_is_refused(tmp_path, drop):
    path = tmp_path / LABELED_NAME
    with h5py.File(path, "w") as h5:
        for key in {"images", "depths"} - {drop}:
            h5.create_dataset(key, data=np.zeros((1, 3, 4, 4) if key == "images" else (1, 4, 4)))
    with pytest.raises(DataError, match=f"lacks '{drop}'"):
        NYULabeled(path)


def test_mismatched_image_and_depth_counts_are_refused(tmp_path):
    path = tmp_path / LABELED_NAME
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.zeros((2, 3, 4, 4), np.uint8))
        h5.create_dataset("depths", data=np.zeros((3, 4, 4), np.float32))
    with pytest.raises(DataError, match=r"images \(2, 3, 4, 4\) and depths \(3, 4, 4\)"):
        NYULabeled(path)


def test_non_hdf5_file_is_refused(tmp_path):
    path = tmp_path / LABELED_NAME
    path.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)
    with pytest.raises(DataError, match="is not a MATLAB v7.3"):
        NYULabeled(path)


def test_splits_file_without_the_index_arrays_is_refused(tmp_path):
    scipy.io.savemat(tmp_path / SPLITS_NAME, {"something": np.ones(3)})
    with pytest.raises(DataError, match="lacks trainNdxs, testNdxs"):
        read_splits(tmp_path / SPLITS_NAME)
