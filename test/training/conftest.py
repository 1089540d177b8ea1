"""Small synthetic data sets written once per test session in the real NYU layouts."""

from __future__ import annotations


import pytest

from rgbd_vae_training.synth.generate import write_nyu_mat, write_nyu_raw

SMALL = {"width": 160, "height": 120}


@pytest.fixture(scope="session")
def nyu_raw_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nyu_raw")
    write_nyu_raw(out, scenes=3, frames=3, seed=7, **SMALL)
    return out


@pytest.fixture(scope="session")
def nyu_raw_rooms(tmp_path_factory):
    """Seven one-room scenes of 2 frames: 3 rooms in the test split, 4 in the training split, of which
    train.validation_share=0.25 holds 1 back to validate on (6 frames train, 2 validate)."""
    out = tmp_path_factory.mktemp("nyu_raw_rooms")
    write_nyu_raw(out, scenes=7, frames=2, seed=7, **SMALL)
    return out


@pytest.fixture(scope="session")
def nyu_mat_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nyu_mat")
    write_nyu_mat(out, scenes=3, frames=2, seed=7, **SMALL)
    return out
