"""Scenes are split by room: a room's sessions never land on both sides."""

import shutil

import pytest

from rgbd_vae_training.data import DataError
from rgbd_vae_training.data.detect import open_dataset
from rgbd_vae_training.data.splits import hold_out, room_of, split_scenes
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


def test_validation_frames_are_held_back_by_room_from_the_training_rooms():
    scenes = [f"{kind}_{n:04d}{session}" for kind in ("kitchen", "bedroom") for n in range(20) for session in ("a", "b")]
    frames = [s for s in scenes for _ in range(3)]  # 3 frames a scene
    kept, held = hold_out(frames, len(frames), 0.1)
    assert sorted(kept + held) == list(range(len(frames)))
    held_rooms, kept_rooms = {room_of(frames[i]) for i in held}, {room_of(frames[i]) for i in kept}
    assert len(held_rooms) == 4 and len(kept_rooms) == 36 and held_rooms.isdisjoint(kept_rooms)  # sessions together
    assert len(held) == 4 * 2 * 3
    # the choice depends on the rooms' names, not on the order the frames come in
    reordered = list(reversed(frames))
    assert {reordered[i] for i in hold_out(reordered, len(reordered), 0.1)[1]} == {frames[i] for i in held}


def test_frames_without_scenes_are_held_back_one_by_one():
    kept, held = hold_out(None, 50, 0.1)
    assert len(held) == 5 and sorted(kept + held) == list(range(50)) and held != list(range(5))
    assert hold_out(None, 50, 0.1) == (kept, held)  # deterministic


def test_image_folder_frames_are_held_back_by_their_path_so_adding_images_moves_no_other_across(tmp_path):
    import numpy as np
    from PIL import Image

    from rgbd_vae_training.data.image_folder import ImageFolder
    from rgbd_vae_training.train.config import TrainSettings
    from rgbd_vae_training.train.validation import split_off_validation

    def held_names():
        reader = ImageFolder(tmp_path)
        _, held, record = split_off_validation(reader, TrainSettings(validation_share=0.2))
        return {reader.frame_keys[i] for i in held.indices}, record

    pixel = np.zeros((4, 4, 3), np.uint8)
    for n in range(20, 60):
        Image.fromarray(pixel).save(tmp_path / f"img_{n:03d}.png")
    before, record = held_names()
    assert len(before) == 8 and record["frames"] == 8
    for n in range(20):  # new images that sort before every old one: each old image's index moves by 20
        Image.fromarray(pixel).save(tmp_path / f"img_{n:03d}.png")
    after, _ = held_names()
    old = {f"img_{n:03d}.png" for n in range(20, 60)}
    assert after & old == before  # the old images held back are the same ones
    with pytest.raises(ValueError, match="3 frame keys for 4 frames"):
        hold_out(None, 4, 0.5, ["a", "b", "c"])


def test_no_validation_frames_where_the_share_rounds_to_no_room_or_the_frames_are_of_one_room():
    rooms = [f"room_{n:04d}" for n in range(6)]
    assert hold_out(rooms[:4], 4, 0.1) == ([0, 1, 2, 3], [])  # 0.4 of a room
    assert len(hold_out(rooms[:5], 5, 0.1)[1]) == 1  # half a room rounds up: from 5 rooms at 0.1, as documented
    assert len(hold_out(rooms[:6], 6, 0.25)[1]) == 2  # 1.5 rounds up too (not to even)
    assert hold_out(["kitchen_0001a", "kitchen_0001b"], 2, 0.5) == ([0, 1], [])  # one room: none held back


def test_each_reader_names_its_frames_scenes_without_reading_them(nyu_raw_dir, nyu_mat_dir):
    for path in (nyu_raw_dir, nyu_mat_dir):
        for split in ("train", "test"):
            reader = open_dataset(path, split=split)
            assert reader.frame_scenes == [frame.scene for frame in reader] and all(reader.frame_scenes)
