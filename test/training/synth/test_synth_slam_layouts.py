"""``synth --layout tum|7scenes``: files in the real layouts, read back by the real readers with the
generator's ground truth (depth in each set's units, poses, stamps)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rgbd_vae_training.data import open_dataset
from rgbd_vae_training.data.detect import detect_layout
from rgbd_vae_training.data.seven_scenes import SevenScenes
from rgbd_vae_training.data.tum import TUMSequences
from rgbd_vae_training.synth.generate import generate_scene, is_complete
from rgbd_vae_training.synth.slam_layouts import ir_pose, write_7scenes, write_tum

RGBD_VAE = Path(sys.executable).with_name("rgbd-vae")
SIZE = {"width": 32, "height": 24}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tum_synth_is_read_back_in_metres_with_the_generators_poses_and_stamps(tmp_path):
    write_tum(tmp_path, scenes=2, frames=3, seed=2, **SIZE)
    reader = TUMSequences(tmp_path)
    assert len(reader) == 6 and reader.sequences == ["synth_room_0000", "synth_room_0001"]
    truth = list(generate_scene(2, 1, 3, **SIZE))
    for k, expected in enumerate(truth):
        frame = reader[3 + k]
        assert frame.scene == "synth_room_0001"
        np.testing.assert_array_equal(frame.rgb_u8, expected.rgb_u8)
        # registered depth (RGB camera), 1/5000 m steps
        np.testing.assert_allclose(frame.depth_m, expected.depth_rgb_m, atol=0.5 / 5000 + 1e-6)
        np.testing.assert_allclose(frame.pose, expected.pose_rgb, atol=1e-8)
        assert frame.stamp_s == pytest.approx(expected.depth_stamp_s, abs=1e-6)
        assert frame.depth_m.dtype == np.float32 and frame.pose.dtype == np.float64
    # the RGB clock runs a few ms behind depth; association pairs each depth with its own RGB image
    assert [f.rgb_stamp_s - f.depth_stamp_s for f in reader.frames[3:]] == pytest.approx(
        [e.rgb_stamp_s - e.depth_stamp_s for e in truth], abs=2e-6)


def test_7scenes_synth_is_unregistered_millimetres_with_the_depth_cameras_poses(tmp_path):
    write_7scenes(tmp_path, scenes=1, frames=2, seed=3, **SIZE)
    assert sorted(p.name for p in (tmp_path / "synth_room_0000" / "seq-01").iterdir()) == [
        f"frame-{k:06d}.{kind}" for k in range(2) for kind in ("color.png", "depth.png", "pose.txt")]
    reader = SevenScenes(tmp_path)
    for frame, expected in zip(reader, generate_scene(3, 0, 2, **SIZE)):
        assert frame.scene == "synth_room_0000/seq-01" and frame.stamp_s is None
        np.testing.assert_array_equal(frame.rgb_u8, expected.rgb_u8)
        np.testing.assert_allclose(frame.depth_m, expected.depth_ir_m, atol=0.0005 + 1e-6)  # as the IR camera saw it
        assert np.abs(frame.depth_m - expected.depth_rgb_m).max() > 0.001  # not registered to the colour camera
        np.testing.assert_allclose(frame.pose, ir_pose(expected.pose_rgb), atol=1e-8)
        assert np.linalg.norm(frame.pose[:3, 3] - expected.pose_rgb[:3, 3]) == pytest.approx(0.025, abs=0.001)


def test_same_seed_gives_the_same_bytes_in_the_tum_and_7scenes_layouts(tmp_path):
    for writer in (write_tum, write_7scenes):
        a, b, c = (tmp_path / writer.__name__ / n for n in "abc")
        for out, seed in ((a, 1), (b, 1), (c, 2)):
            writer(out, scenes=1, frames=2, seed=seed, **SIZE)
        assert _digest(a) == _digest(b) != _digest(c)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tum", "7scenes"])
def test_synth_command_writes_a_complete_layout_that_data_detects(tmp_path, layout):
    out = tmp_path / layout
    result = subprocess.run([str(RGBD_VAE), "synth", "--layout", layout, "--scenes", "2", "--frames", "2",
                             "--width", "32", "--height", "24", "--seed", "4", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"in the {layout} layout" in result.stdout
    assert is_complete(out, layout, scenes=2, frames=2, seed=4, width=32, height=24)
    assert json.loads((out / "synth.json").read_text())["layout"] == layout
    assert detect_layout(out) == layout
    assert len(open_dataset(out)) == 4
    train, test = open_dataset(out, split="train"), open_dataset(out, split="test")
    assert len(train) == len(test) == 2 and set(train.frame_scenes).isdisjoint(test.frame_scenes)


@pytest.mark.slow
def test_a_killed_tum_synth_leaves_whole_sequences_only(tmp_path):
    import os

    out = tmp_path / "tum"
    killed = subprocess.run([str(RGBD_VAE), "synth", "--layout", "tum", "--scenes", "2", "--frames", "2",
                             "--width", "32", "--height", "24", "--out", str(out)],
                            env={**os.environ, "RGBD_VAE_KILL_AT": "synth-frame:3"}, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9
    assert not (out / "synth.json").exists()
    reader = TUMSequences(out)  # the killed writer's hidden staging folder is no sequence
    assert reader.sequences == ["synth_room_0000"] and len(reader) == 2


def test_depth_beyond_the_sensor_or_the_format_is_written_as_each_sets_no_reading_code():
    from rgbd_vae_training.synth.slam_layouts import depth_to_units

    depth_m = np.array([1.2344, 0.0, np.nan, 10.5, 9.9, np.inf], np.float32)
    assert depth_to_units(depth_m, 1000, 65535).tolist() == [1234, 65535, 65535, 65535, 9900, 65535]
    assert depth_to_units(depth_m, 5000, 0).tolist() == [6172, 0, 0, 0, 49500, 0]
