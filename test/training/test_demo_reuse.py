"""The demo reuses only finished models and complete data (SPEC §8): a killed run is resumed,
a killed synth is written again."""

import os
import subprocess
import sys

import pytest

from rgbd_vae_ros.models import load_checkpoint
from rgbd_vae_training import demo
from rgbd_vae_training.train.config import load_config
from rgbd_vae_training.train.loop import is_finished

FAST = ["model.image_size=32", "model.widths=[8, 16, 16]", "model.latent_dim=8", "train.batch_size=2",
        "train.epochs=2"]


@pytest.mark.slow  # three short trainings, about 6 s
def test_a_model_whose_training_was_killed_is_trained_to_the_end_not_reused(nyu_raw_dir, tmp_path, capsys):
    folder = tmp_path / "models" / "vae"
    killed = subprocess.run([sys.executable, "-m", "rgbd_vae_training.cli", "train", "vae", "--config", "tiny_vae",
                             "--data", str(nyu_raw_dir), "--out", str(folder), "--no-progress", *FAST],
                            env={**os.environ, "RGBD_VAE_KILL_AT": "checkpoint:1", "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=240)
    assert killed.returncode == -9, killed.stderr  # killed after the first of two epochs
    assert load_checkpoint(folder / "checkpoint.pt")["step"] == 3
    config = load_config("tiny_vae", FAST)
    checkpoint = demo.train_or_reuse("tiny_vae", config, nyu_raw_dir, folder)
    assert "resuming tiny_vae" in capsys.readouterr().out
    assert load_checkpoint(checkpoint)["step"] == 6 and is_finished(checkpoint, config)
    before = checkpoint.read_bytes()
    assert demo.train_or_reuse("tiny_vae", config, nyu_raw_dir, folder) == checkpoint
    assert "reusing" in capsys.readouterr().out and checkpoint.read_bytes() == before  # finished: not trained again
    other = load_config("tiny_vae", [*FAST, "model.latent_dim=9"])
    demo.train_or_reuse("tiny_vae", other, nyu_raw_dir, folder)  # another config: trained afresh, not resumed
    assert "training tiny_vae" in capsys.readouterr().out and is_finished(checkpoint, other)


@pytest.mark.slow
def test_training_rooms_from_a_killed_synth_are_synthesised_again(tmp_path, monkeypatch, capsys):
    rooms = {"scenes": 3, "frames": 1, "seed": 2, "width": 32, "height": 24}
    monkeypatch.setattr(demo, "TRAINING_ROOMS", rooms)
    killed = subprocess.run([sys.executable, "-m", "rgbd_vae_training.cli", "synth", "--layout", "nyu-mat",
                             "--scenes", "3", "--frames", "1", "--seed", "2", "--width", "32", "--height", "24",
                             "--out", str(tmp_path / "data" / "rooms")],
                            env={**os.environ, "RGBD_VAE_KILL_AT": "synth-frame:2"}, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9
    assert (tmp_path / "data" / "rooms").is_dir()  # begun, killed before its file was written
    folder = demo.training_rooms(tmp_path)
    assert "synthesising 3 training rooms (32x24, NYU labeled layout)" in capsys.readouterr().out
    labeled = ["nyu_depth_v2_labeled.mat", "splits.mat", "synth.json"]
    assert sorted(p.name for p in folder.iterdir()) == labeled
    demo.training_rooms(tmp_path)
    assert "reusing the training rooms" in capsys.readouterr().out


@pytest.mark.slow
def test_raw_training_rooms_an_earlier_demo_left_are_replaced_by_labeled_ones(tmp_path, monkeypatch, capsys):
    """Demos before the depth model trained on full-frame depth left the same rooms in the NYU raw layout
    in data/rooms: they are not reused, and no raw room is left beside the labeled file."""
    from rgbd_vae_training.data.detect import detect_layout
    from rgbd_vae_training.synth.generate import write_nyu_raw

    rooms = {"scenes": 3, "frames": 1, "seed": 2, "width": 32, "height": 24}
    monkeypatch.setattr(demo, "TRAINING_ROOMS", rooms)
    write_nyu_raw(tmp_path / "data" / "rooms", **rooms)
    folder = demo.training_rooms(tmp_path)
    assert "synthesising 3 training rooms" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["nyu_depth_v2_labeled.mat", "splits.mat", "synth.json"]
    assert detect_layout(folder) == "nyu-mat"
