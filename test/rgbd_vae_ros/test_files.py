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
