"""The synthetic scene generator: determinism, scene content, the synth command."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rgbd_vae_training.synth.generate import generate_scene, write_nyu_mat, write_nyu_raw
from rgbd_vae_training.synth.scene import FIXTURE_THICKNESS_M, ROOM_SURFACES, make_scene

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


def test_rooms_hold_up_to_12_pieces_of_furniture_4_wall_fixtures_and_3_lights():
    for seed in range(20):
        scene = make_scene(np.random.default_rng(seed))
        fixtures = [p for p in scene.primitives if FIXTURE_THICKNESS_M in p.size]
        assert 1 <= len(scene.primitives) - len(fixtures) <= 12 and len(fixtures) <= 4
        assert 1 <= len(scene.lights) <= 3
        assert np.all(scene.room >= 2.4)


@pytest.mark.slow
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
    others = [f for s in (1, 2) for f in generate_scene(0, s, 2, width=80, height=60)]
    assert any((f.object_id_rgb >= ROOM_SURFACES).any() for f in frames + others)  # furniture in some view
    stamps = [f.depth_stamp_s for f in frames]
    np.testing.assert_allclose(np.diff(stamps), 1 / 30, atol=1e-6)  # float64 seconds near 1.3e9


@pytest.mark.slow
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


SMALL_SYNTH = ["--scenes", "3", "--frames", "2", "--width", "32", "--height", "24", "--seed", "5"]


def _synth(out, layout="nyu-raw", env=None):
    import os

    return subprocess.run([str(RGBD_VAE), "synth", "--layout", layout, *SMALL_SYNTH, "--out", str(out)],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_killed_synth_leaves_whole_scenes_only_is_not_complete_and_the_next_run_cleans_up(tmp_path):
    from rgbd_vae_training.data.nyu_raw import NYURawScenes
    from rgbd_vae_training.synth.generate import is_complete

    out = tmp_path / "raw"
    settings = {"scenes": 3, "frames": 2, "seed": 5, "width": 32, "height": 24}
    killed = _synth(out, env={"RGBD_VAE_KILL_AT": "synth-frame:3"})  # in the second scene's first frame
    assert killed.returncode == -9
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["synth_room_0000"]
    assert NYURawScenes(out).scenes == ["synth_room_0000"] and len(NYURawScenes(out)) == 2  # no half scene
    assert any(p.name.startswith(".synth_room_0001.") for p in out.iterdir())  # the killed writer's staging
    assert not is_complete(out, "nyu-raw", **settings)
    done = _synth(out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["synth.json", "synth_room_0000", "synth_room_0001",
                                                     "synth_room_0002"]
    assert is_complete(out, "nyu-raw", **settings)
    assert not is_complete(out, "nyu-raw", **{**settings, "scenes": 4})  # made with other settings
    assert not is_complete(out, "nyu-mat", **settings)


@pytest.mark.parametrize("layout", ["nyu-raw", "nyu-mat"])
def test_a_synth_onto_a_full_disk_fails_in_a_sentence_and_is_not_complete(tmp_path, monkeypatch, capsys, layout):
    import errno

    from rgbd_vae_training.cli import main
    from rgbd_vae_training.synth import generate

    real_write, writes = generate.atomic_write_bytes, []

    def disk_full_after_five_files(path, data):
        writes.append(path)
        if len(writes) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(generate, "atomic_write_bytes", disk_full_after_five_files)
    if layout == "nyu-mat":
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(generate, "write_labeled", full)  # the .mat goes through h5py: fill the disk there
    out = tmp_path / "data"
    assert main(["synth", "--layout", layout, *SMALL_SYNTH, "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"rgbd-vae synth: error: cannot write into {str(out)!r}: No space left on device; the scenes finished "
        "before are whole and the data set is marked incomplete (no synth.json).")
    assert not generate.is_complete(out, layout, scenes=3, frames=2, seed=5, width=32, height=24)
    if layout == "nyu-raw":
        from rgbd_vae_training.data.nyu_raw import NYURawScenes

        assert sorted(p.name for p in out.iterdir()) == ["synth_room_0000"]  # whole; the second never appeared
        assert len(NYURawScenes(out)) == 2


def test_a_synth_into_a_used_folder_replaces_what_synth_wrote_there_and_keeps_other_files(tmp_path):
    """A smaller rewrite (or one after a killed, larger run) once left the earlier run's extra rooms
    beside its own, read as training frames; another layout's files confused layout detection."""
    from rgbd_vae_training.data import open_dataset
    from rgbd_vae_training.data.detect import detect_layout
    from rgbd_vae_training.synth.generate import is_complete

    out = tmp_path / "data"
    write_nyu_raw(out, scenes=4, frames=1, seed=3, width=32, height=24)
    (out / "notes.txt").write_text("mine")
    write_nyu_raw(out, scenes=2, frames=1, seed=3, width=32, height=24)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "synth.json", "synth_room_0000", "synth_room_0001"]
    assert len(open_dataset(out, split="all")) == 2
    assert _digest(out) == {**_digest_of(write_nyu_raw, tmp_path / "fresh", scenes=2), "notes.txt": _sha("mine")}
    write_nyu_mat(out, scenes=2, frames=1, seed=3, width=32, height=24)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "nyu_depth_v2_labeled.mat", "splits.mat",
                                                     "synth.json"]
    assert detect_layout(out) == "nyu-mat" and is_complete(out, "nyu-mat", scenes=2, frames=1, seed=3, width=32,
                                                             height=24)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_synth_never_removes_a_labeled_file_that_no_finished_synth_wrote(tmp_path):
    """NYU's own download is named as the labeled layout's files: a folder without a synth's marker
    keeps them (only synth_room_* and synth_walk, names no real set uses, always go)."""
    out = tmp_path / "nyu"
    out.mkdir()
    (out / "nyu_depth_v2_labeled.mat").write_bytes(b"the user's download")
    (out / "splits.mat").write_bytes(b"theirs too")
    write_nyu_raw(out, scenes=1, frames=1, seed=3, width=32, height=24)
    assert (out / "nyu_depth_v2_labeled.mat").read_bytes() == b"the user's download"
    assert (out / "splits.mat").read_bytes() == b"theirs too"


def _digest_of(writer, out, **settings) -> dict[str, str]:
    writer(out, frames=1, seed=3, width=32, height=24, **settings)
    return _digest(out)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
