"""``synth --walk revisit``: a walk that comes back to rooms with view changes of known angle."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rgbd_vae_training.data.nyu_raw import NYURawScenes
from rgbd_vae_training.synth.generate import generate_scene, is_complete
from rgbd_vae_training.synth.revisit import VIEW_CHANGE_BINS_DEG, read_places, write_nyu_raw_revisit

RGBD_VAE = Path(sys.executable).with_name("rgbd-vae")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _axis(yaw_deg, pitch_deg):
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])


def test_the_walk_revisits_every_room_once_per_bin_and_records_the_view_change(tmp_path):
    folder = write_nyu_raw_revisit(tmp_path / "a", rooms=3, frames_per_visit=2, seed=1, width=48, height=36)
    rows, frames = read_places(tmp_path / "a"), NYURawScenes(folder)
    assert is_complete(tmp_path / "a", "nyu-raw-revisit", rooms=3, frames_per_visit=2, seed=1, width=48, height=36)
    assert len(rows) == len(frames) == 3 * (1 + len(VIEW_CHANGE_BINS_DEG)) * 2
    np.testing.assert_allclose([p.depth_stamp_s for _, p in frames.pairs], [r["depth_stamp_s"] for r in rows], atol=1e-6)
    for room in range(3):
        mine = [r for r in rows if r["room"] == room]
        assert sorted({r["room_visit"] for r in mine}) == [0, 1, 2, 3]
        # one revisit per bin of yaw offset, either sign
        offsets = sorted(abs(r["yaw_offset_deg"]) for r in mine if r["room_visit"] > 0)[::2]
        assert [any(lo <= o < hi for o in offsets) for lo, hi in VIEW_CHANGE_BINS_DEG] == [True] * 3
    assert all(r["view_change_deg"] is None for r in rows[:6])  # first visits: nothing to come back to
    # a revisit frame's view change is the smallest angle to any earlier frame of its room
    for i, row in enumerate(rows):
        earlier = [_axis(r["yaw_deg"], r["pitch_deg"]) for r in rows[:i]
                   if r["room"] == row["room"] and r["visit"] < row["visit"]]
        if earlier:
            angles = np.degrees(np.arccos(np.clip(np.array(earlier) @ _axis(row["yaw_deg"], row["pitch_deg"]), -1, 1)))
            assert row["view_change_deg"] == pytest.approx(angles.min(), abs=0.05)
    # a first visit is the room's frames as synth --layout nyu-raw draws them (the same rooms for the same seed)
    first = next(generate_scene(1, 0, 1, 48, 36))
    assert first.pose_rgb[:3, 3] == pytest.approx([rows[0]["x_m"], rows[0]["y_m"], rows[0]["z_m"]], abs=1e-3)


@pytest.mark.slow
def test_the_revisit_walk_is_deterministic_per_seed_and_the_command_checks_its_options(tmp_path):
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_nyu_raw_revisit(tmp_path / out, rooms=2, frames_per_visit=1, seed=seed, width=32, height=24)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    ok = subprocess.run([str(RGBD_VAE), "synth", "--walk", "revisit", "--rooms", "2", "--frames-per-visit", "1",
                         "--seed", "3", "--width", "32", "--height", "24", "--out", str(tmp_path / "cli")],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert _digest(tmp_path / "cli") == _digest(tmp_path / "a")
    missing = subprocess.run([str(RGBD_VAE), "synth", "--walk", "revisit", "--rooms", "2", "--out", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--walk needs --frames-per-visit" in missing.stderr
    mixed = subprocess.run([str(RGBD_VAE), "synth", "--layout", "nyu-raw", "--scenes", "1", "--frames", "1",
                            "--rooms", "2", "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and "--rooms cannot be used with --layout" in mixed.stderr
    zero = subprocess.run([str(RGBD_VAE), "synth", "--walk", "revisit", "--rooms", "0", "--frames-per-visit", "1",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert zero.returncode == 1 and zero.stderr.strip() == "rgbd-vae synth: error: --rooms is 0; expected at least 1."
