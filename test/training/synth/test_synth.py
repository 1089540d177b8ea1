"""The synthetic scene generator: determinism, scene content, the synth command."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from rgbd_vae_training.synth.generate import generate_scene, write_nyu_mat, write_nyu_raw
from rgbd_vae_training.synth.scene import ROOM_SURFACES, make_scene

RGBD_VAE = Path(sys.executable).with_name("rgbd-vae")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_in_both_layouts(tmp_path):
    for writer in (write_nyu_raw, write_nyu_mat):
        a, b, c = tmp_path / writer.__name__ / "a", tmp_path / writer.__name__ / "b", tmp_path / writer.__name__ / "c"
        for out, seed in ((a, 3), (b, 3), (c, 4)):
            writer(out, scenes=2, frames=2, seed=seed, width=64, height=48)
        assert _digest(a) == _digest(b)
        assert _digest(a) != _digest(c)


def test_rooms_hold_3_to_12_primitives_and_lights():
    for seed in range(20):
        scene = make_scene(np.random.default_rng(seed))
        assert 1 <= len(scene.primitives) <= 12 and 1 <= len(scene.lights) <= 3
        assert np.all(scene.room >= 2.4)


def test_every_seed_makes_a_room_whose_furniture_fits_inside_it():
    # seed 3's fourth room once drew a box wider than the room and crashed the generator
    for seed in range(400):
        scene = make_scene(np.random.default_rng(seed))
        for p in scene.primitives:
            assert np.all(p.centre[:2] > 0) and np.all(p.centre[:2] < scene.room[:2])


def test_frames_show_furniture_and_valid_depth_inside_the_room():
    frames = list(generate_scene(0, 0, 5, width=80, height=60))
    for f in frames:
        room_diagonal = 7.0 * np.sqrt(3)
        assert np.all((f.depth_rgb_m > 0.05) & (f.depth_rgb_m < room_diagonal))
        assert f.rgb_u8.std() > 5  # shaded and textured, not flat
    assert any((f.object_id_rgb >= ROOM_SURFACES).any() for f in frames)
    stamps = [f.depth_stamp_s for f in frames]
    np.testing.assert_allclose(np.diff(stamps), 1 / 30, atol=1e-6)  # float64 seconds near 1.3e9


def test_synth_command_writes_the_layout_and_rejects_bad_arguments(tmp_path):
    result = subprocess.run([str(RGBD_VAE), "synth", "--layout", "nyu-raw", "--scenes", "1", "--frames", "2",
                             "--out", str(tmp_path / "raw"), "--width", "64", "--height", "48"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "raw" / "synth_room_0000").glob("d-*.pgm"))) == 2
    assert "frames/s" in result.stdout
    bad = subprocess.run([str(RGBD_VAE), "synth", "--layout", "nyu-raw", "--scenes", "0", "--frames", "2",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip() == "rgbd-vae synth: error: --scenes is 0; expected at least 1."
    wrong = subprocess.run([str(RGBD_VAE), "synth", "--layout", "png", "--scenes", "1", "--frames", "1",
                            "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert wrong.returncode == 2


def test_a_walk_is_one_scene_folder_of_the_rooms_frames_on_one_30_hz_clock(tmp_path):
    from rgbd_vae_training.data.nyu_raw import NYURawScenes
    from rgbd_vae_training.synth.generate import write_nyu_raw_walk

    folder = write_nyu_raw_walk(tmp_path / "walk", rooms=3, frames_per_room=2, seed=4, width=64, height=48)
    write_nyu_raw(tmp_path / "rooms", scenes=3, frames=2, seed=4, width=64, height=48)
    walk, rooms = NYURawScenes(folder), NYURawScenes(tmp_path / "rooms")
    assert walk.scenes == ["synth_walk"] and len(walk) == 6
    depth_stamps = np.array([p.depth_stamp_s for _, p in walk.pairs])
    np.testing.assert_allclose(np.diff(depth_stamps), 1 / 30, atol=2e-6)  # no jump between rooms
    for i in range(6):  # the same frames as the rooms written one by one
        np.testing.assert_array_equal(walk[i].rgb_u8, rooms[i].rgb_u8)
