"""Scenes are split by room: a room's sessions never land on both sides."""

import shutil

import pytest

from rgbd_vae_training.data import DataError
from rgbd_vae_training.data.detect import open_dataset
from rgbd_vae_training.data.splits import room_of, split_scenes
from rgbd_vae_training.synth.generate import scene_name


def test_the_room_is_the_folder_name_without_its_session_letters():
    assert room_of("kitchen_0028a") == room_of("kitchen_0028b") == room_of("kitchen_0028") == "kitchen_0028"
    assert room_of("living_room_0046ab") == "living_room_0046"
    assert room_of("synth_room_0003") == "synth_room_0003"
    assert room_of("office_kitchen") == "office_kitchen"  # no number: its own room


def test_sessions_of_one_room_are_never_on_both_sides():
    scenes = [f"{kind}_{n:04d}{session}" for kind in ("kitchen", "bedroom", "office") for n in range(12)
              for session in ("a", "b", "c")]
    split = split_scenes(scenes)
    train_rooms = {room_of(s) for s in split["train"]}
    test_rooms = {room_of(s) for s in split["test"]}
    assert not train_rooms & test_rooms
    assert sorted(split["train"] + split["test"]) == sorted(scenes)
    assert 0.35 < len(test_rooms) / (len(train_rooms) + len(test_rooms)) < 0.55
    # The split does not depend on the order the folders were listed in.
    assert split_scenes(list(reversed(scenes))) == split


def test_a_one_room_folder_says_its_test_split_is_empty_and_reads_with_split_all(tmp_path, nyu_raw_dir):
    for session in ("a", "b"):
        shutil.copytree(nyu_raw_dir / scene_name(0), tmp_path / f"kitchen_0028{session}")
    with pytest.raises(DataError, match="one room.*test split is empty.*'all'"):
        open_dataset(tmp_path, split="test")
    assert len(open_dataset(tmp_path, split="train")) == len(open_dataset(tmp_path, split="all")) == 6
