"""Atomic writes: a failed write leaves the old file and no temporary file behind (SPEC §8)."""

import errno

import pytest

from rgbd_vae_ros.files import atomic_output, atomic_write_text


def test_atomic_write_replaces_the_whole_file(tmp_path):
    target = tmp_path / "sub" / "file.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_write_failing_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    atomic_write_text(target, "good")
    with pytest.raises(OSError, match="No space left"):
        with atomic_output(target) as f:
            f.write(b"half of a new checkp")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_interrupted_first_write_leaves_nothing_under_the_target_name(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as f:
            f.write(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)  # that process has exited: nothing runs under its id now


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    from rgbd_vae_ros.files import atomic_dir

    target = tmp_path / "scene"
    with atomic_dir(target) as staging:
        (staging / "a").write_text("1")
        assert not target.exists()
    with pytest.raises(OSError, match="No space left"):
        with atomic_dir(target) as staging:
            (staging / "b").write_text("2")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["scene"] and [p.name for p in target.iterdir()] == ["a"]
    with atomic_dir(target) as staging:
        (staging / "c").write_text("3")
    assert [p.name for p in tmp_path.iterdir()] == ["scene"] and [p.name for p in target.iterdir()] == ["c"]
    assert target.stat().st_mode & 0o777 != 0o700  # not mkdtemp's private mode


def test_only_the_leftovers_of_dead_processes_are_removed(tmp_path):
    import os

    from rgbd_vae_ros.files import remove_leftovers, staging_dir

    dead = tmp_path / f".out.{_dead_pid()}.abc.partial"
    dead_file = tmp_path / f".out.{_dead_pid()}.xyz.tmp"  # a killed atomic_output's temporary
    live = tmp_path / f".out.{os.getpid()}.def.partial"
    other = tmp_path / f".other.{_dead_pid()}.abc.partial"
    unowned = tmp_path / ".out.abc.partial"  # no owner recorded: not ours to judge
    for folder in (dead, live, other, unowned):
        folder.mkdir()
    dead_file.write_bytes(b"half a checkpoint")
    assert sorted(remove_leftovers(tmp_path / "out")) == sorted([dead, dead_file])
    mine = staging_dir(tmp_path / "out")
    assert mine.name.startswith(f".out.{os.getpid()}.") and mine.name.endswith(".partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, other, unowned, mine))


def test_a_temporary_file_is_named_for_its_writer(tmp_path):
    import os

    with atomic_output(tmp_path / "checkpoint.pt") as f:
        [temporary] = tmp_path.iterdir()
        assert temporary.name.startswith(f".checkpoint.pt.{os.getpid()}.") and temporary.name.endswith(".tmp")
        f.write(b"x")
