"""Synthetic training data supervises the whole frame (issue 15 item 5): the labeled layout holds the
depth the RGB camera sees, up to the image's edge, while the raw layout holds the Kinect's depth
registered from the IR camera, with its border of no readings; the trainer's geometry says which."""

import numpy as np
import pytest

from rgbd_vae_training.data import open_dataset
from rgbd_vae_training.synth.generate import write_nyu_mat, write_nyu_raw
from rgbd_vae_training.train.geometry import AspectFrames, training_geometry

ROOMS = {"scenes": 6, "frames": 1, "seed": 11, "width": 128, "height": 96}


def _geometry(path):
    frames = AspectFrames(open_dataset(path, split="all"), 72, 96, "nyu-mat")
    return training_geometry(frames, 72, 96, max_depth_m=10.0, hflip=True, data_name=str(path))


@pytest.mark.slow
def test_labeled_rooms_have_depth_at_every_border_pixel_and_train_over_the_whole_frame(tmp_path):
    write_nyu_mat(tmp_path / "mat", **ROOMS)
    for frame in open_dataset(tmp_path / "mat", split="all"):
        border = np.concatenate([frame.depth_m[0], frame.depth_m[-1], frame.depth_m[:, 0], frame.depth_m[:, -1]])
        assert np.all(np.isfinite(border) & (border > 0.05))
    assert _geometry(tmp_path / "mat")["supervised"] == "full"


@pytest.mark.slow
def test_the_same_rooms_in_the_raw_layout_leave_a_registration_border_never_supervised(tmp_path):
    write_nyu_raw(tmp_path / "raw", **ROOMS)
    frames = list(open_dataset(tmp_path / "raw", split="all"))
    assert all(np.isnan(f.depth_m[0]).all() for f in frames)  # the top rows: no reading after registration
    top, left, bottom, right = _geometry(tmp_path / "raw")["supervised"]
    assert 0.05 < top < 0.15 and 0.02 < left < 0.1 and 0.9 < bottom < 1 and 0.9 < right < 0.98
