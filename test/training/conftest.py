"""Small synthetic data sets written once per test session in the real NYU layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rgbd_vae_training.synth.generate import write_nyu_mat, write_nyu_raw

SMALL = {"width": 160, "height": 120}


@pytest.fixture(scope="session")
def nyu_raw_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nyu_raw")
    write_nyu_raw(out, scenes=3, frames=3, seed=7, **SMALL)
    return out


@pytest.fixture(scope="session")
def nyu_mat_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nyu_mat")
    write_nyu_mat(out, scenes=3, frames=2, seed=7, **SMALL)
    return out


# Many short scenes: held-out scenes then differ from the training ones in room, furniture and texture.
LEARNING = {"scenes": 100, "frames": 1, "seed": 11, "width": 128, "height": 96}


@pytest.fixture(scope="session")
def learning_data(build_once):
    return Path(build_once("learning_data", lambda out: (write_nyu_raw(out, **LEARNING), str(out))[1]))


def _train_tiny(build_once, config_name: str, data) -> Path:
    def build(out):
        from rgbd_vae_training.train.config import load_config
        from rgbd_vae_training.train.loop import train

        return str(train(load_config(config_name), data, out, progress=False).checkpoint)

    return Path(build_once(config_name, build))


@pytest.fixture(scope="session")
def tiny_depth_checkpoint(build_once, learning_data):
    """``tiny_depth`` trained as the demo trains it (about a minute on 2 cores)."""
    return _train_tiny(build_once, "tiny_depth", learning_data)


@pytest.fixture(scope="session")
def tiny_vae_checkpoint(build_once, learning_data):
    return _train_tiny(build_once, "tiny_vae", learning_data)
