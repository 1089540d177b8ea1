"""``rgbd-vae bag from-*``: converted bags read back with rosbags, and atomic output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from rgbd_vae_ros.bags import (
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    RGB_INFO_TOPIC,
    RGB_TOPIC,
    TF_STATIC_TOPIC,
    BagReader,
)
from rgbd_vae_training.bag.convert import (
    LABELED_RATE_HZ,
    RGB_FRAME,
    camera_transforms,
    nyu_raw_sequence,
    seconds_to_ns,
    write_sequence,
)
from rgbd_vae_training.cli import main
from rgbd_vae_training.data.nyu_calibration import camera_matrix_ros
from rgbd_vae_training.data.nyu_mat import LABELED_NAME, NYULabeled
from rgbd_vae_training.data.nyu_raw import NYURawScenes


def _image(msg) -> np.ndarray:
    if msg.encoding == "32FC1":
        return np.frombuffer(msg.data.tobytes(), np.float32).reshape(msg.height, msg.width)
    assert msg.encoding == "rgb8"
    return msg.data.reshape(msg.height, msg.width, 3)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _check_camera_info(bag: BagReader, topic: str, width: int, height: int) -> None:
    infos = list(bag.decoded(topic))
    k = camera_matrix_ros("rgb", width, height)
    for _, info in infos:
        assert (info.width, info.height) == (width, height)
        np.testing.assert_allclose(info.k.reshape(3, 3), k, rtol=1e-12)
        np.testing.assert_allclose(info.p.reshape(3, 4)[:, :3], k, rtol=1e-12)
        assert info.header.frame_id == RGB_FRAME


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_raw_scene_reads_back_with_its_topics_types_stamps_intrinsics_and_depth(nyu_raw_dir, tmp_path, storage):
    scene = nyu_raw_dir / "synth_room_0001"
    out = tmp_path / "bag"
    assert main(["bag", "from-nyu-raw", str(scene), str(out), "--storage", storage]) == 0
    reader = NYURawScenes(scene)
    frames = len(reader)
    with BagReader(out) as bag:
        assert {t: (i.msgtype, i.count) for t, i in bag.topics.items()} == {
            RGB_TOPIC: ("sensor_msgs/msg/Image", frames), DEPTH_TOPIC: ("sensor_msgs/msg/Image", frames),
            RGB_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", frames),
            DEPTH_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", frames),
            TF_STATIC_TOPIC: ("tf2_msgs/msg/TFMessage", 1)}
        assert bag.topics[TF_STATIC_TOPIC].qos.transient_local
        recorded = [stamp for _, stamp, _ in bag.messages()]
        assert recorded == sorted(recorded)
        rgb = list(bag.decoded(RGB_TOPIC))
        depth = list(bag.decoded(DEPTH_TOPIC))
        assert [s for s, _ in rgb] == [seconds_to_ns(p.rgb_stamp_s) for _, p in reader.pairs]
        assert [s for s, _ in depth] == [seconds_to_ns(p.depth_stamp_s) for _, p in reader.pairs]
        for i, ((stamp, rgb_msg), (_, depth_msg)) in enumerate(zip(rgb, depth)):
            frame = reader[i]
            assert _stamp_ns(rgb_msg) == stamp and rgb_msg.header.frame_id == RGB_FRAME
            assert depth_msg.encoding == "32FC1" and rgb_msg.encoding == "rgb8"
            np.testing.assert_array_equal(_image(rgb_msg), frame.rgb_u8)
            np.testing.assert_array_equal(np.isnan(_image(depth_msg)), np.isnan(frame.depth_m))
            np.testing.assert_allclose(_image(depth_msg), frame.depth_m, rtol=1e-6, equal_nan=True)
            assert np.isnan(frame.depth_m).any()  # registration leaves holes, and they stay NaN
        _check_camera_info(bag, RGB_INFO_TOPIC, 160, 120)
        _check_camera_info(bag, DEPTH_INFO_TOPIC, 160, 120)
        [(_, tf)] = list(bag.decoded(TF_STATIC_TOPIC))
        expected = camera_transforms()
        assert [(t.header.frame_id, t.child_frame_id) for t in tf.transforms] == [(p, c) for p, c, _, _ in expected]
        for t, (_, _, rotation, translation) in zip(tf.transforms, expected):
            q = t.transform.rotation
            assert np.isclose(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2, 1.0)
            np.testing.assert_allclose([t.transform.translation.x, t.transform.translation.y,
                                        t.transform.translation.z], translation)
        # The optical frame looks along camera_link's x axis: its z maps to x.
        np.testing.assert_allclose(expected[0][2] @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])


def test_the_labeled_mat_becomes_a_30_hz_sequence_of_measured_depth(nyu_mat_dir, tmp_path):
    out = tmp_path / "bag"
    assert main(["bag", "from-nyu-mat", str(nyu_mat_dir / LABELED_NAME), str(out), "--split", "test"]) == 0
    reader = NYULabeled(nyu_mat_dir / LABELED_NAME, split="test", raw_depth=True)
    with BagReader(out) as bag:
        depth = list(bag.decoded(DEPTH_TOPIC))
        rgb = list(bag.decoded(RGB_TOPIC))
    assert len(depth) == len(rgb) == len(reader) > 1
    stamps = np.array([s for s, _ in rgb])
    np.testing.assert_allclose(np.diff(stamps) / 1e9, 1 / LABELED_RATE_HZ, atol=1e-6)
    assert [s for s, _ in depth] == list(stamps)
    for i, (_, msg) in enumerate(depth):
        np.testing.assert_allclose(_image(msg), reader[i].depth_m, rtol=1e-6, equal_nan=True)
    # one scene of a split: its frames, wherever they are in the file
    reader = NYULabeled(nyu_mat_dir / LABELED_NAME, split="train", raw_depth=True)
    scene = reader.frame_scenes[-1]
    out_scene = tmp_path / "scene"
    assert main(["bag", "from-nyu-mat", str(nyu_mat_dir / LABELED_NAME), str(out_scene), "--split", "train",
                 "--scene", scene]) == 0
    with BagReader(out_scene) as bag:
        depth = [_image(msg) for _, msg in bag.decoded(DEPTH_TOPIC)]
    ours = [i for i, s in enumerate(reader.frame_scenes) if s == scene]
    assert len(depth) == len(ours) < len(reader)
    for i, image in zip(ours, depth):
        np.testing.assert_allclose(image, reader[i].depth_m, rtol=1e-6, equal_nan=True)


def test_from_synth_takes_either_layout_and_a_folder_of_scenes_needs_a_scene(nyu_raw_dir, nyu_mat_dir, tmp_path,
                                                                              capsys):
    assert main(["bag", "from-synth", str(nyu_raw_dir), str(tmp_path / "a")]) == 1
    error = capsys.readouterr().err
    assert "holds 3 scenes (synth_room_0000, synth_room_0001, synth_room_0002)" in error and "--scene" in error
    assert not (tmp_path / "a").exists()
    assert main(["bag", "from-synth", str(nyu_raw_dir), str(tmp_path / "a"), "--scene", "synth_room_0002"]) == 0
    assert main(["bag", "from-synth", str(nyu_mat_dir), str(tmp_path / "b"), "--storage", "sqlite3"]) == 0
    with BagReader(tmp_path / "a") as a, BagReader(tmp_path / "b") as b:
        assert a.topics[RGB_TOPIC].count == 3 and b.topics[RGB_TOPIC].count == 6
    assert main(["bag", "from-synth", str(nyu_raw_dir), str(tmp_path / "c"), "--scene", "nope"]) == 1
    assert "no NYU raw scene" in capsys.readouterr().err


def test_an_existing_output_is_never_overwritten(nyu_raw_dir, tmp_path, capsys):
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["bag", "from-nyu-raw", str(nyu_raw_dir / "synth_room_0000"), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_a_conversion_failing_midway_leaves_no_bag_and_no_scratch(nyu_raw_dir, tmp_path):
    sequence = nyu_raw_sequence(nyu_raw_dir / "synth_room_0000")
    real_frames = sequence.frames

    def broken():
        for i, frame in enumerate(real_frames()):
            if i == 2:
                raise OSError("No space left on device")
            yield frame

    sequence.frames = broken
    with pytest.raises(OSError, match="No space left"):
        write_sequence(sequence, tmp_path / "bag")
    assert list(tmp_path.iterdir()) == []


def _convert_killed_at_frame(scene, out, signal_name: str) -> subprocess.CompletedProcess:
    """``bag from-nyu-raw`` in its own process, sent ``signal_name`` after its second frame."""
    env = {**os.environ, "RGBD_VAE_KILL_AT": f"bag-frame:2:{signal_name}"}
    # A shell that starts the suite in the background leaves SIGINT ignored in its children, and
    # Python then never raises KeyboardInterrupt; a user's terminal gives the default.
    return subprocess.run([sys.executable, "-m", "rgbd_vae_training.cli", "bag", "from-nyu-raw", str(scene), str(out)],
                          env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_an_interrupted_conversion_leaves_no_bag_under_the_target_name(nyu_raw_dir, tmp_path):
    done = _convert_killed_at_frame(nyu_raw_dir / "synth_room_0000", tmp_path / "bag", "INT")
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["TERM", "KILL"])
def test_the_next_conversion_removes_what_a_killed_one_left(nyu_raw_dir, tmp_path, signal_name):
    scene = nyu_raw_dir / "synth_room_0000"
    done = _convert_killed_at_frame(scene, tmp_path / "bag", signal_name)
    assert done.returncode == -getattr(signal, f"SIG{signal_name}")
    [leftover] = tmp_path.iterdir()  # a killed process cleans nothing up
    assert leftover.name.startswith(".bag.") and leftover.name.endswith(".partial")
    live = tmp_path / f".bag.{os.getpid()}.x.partial"  # a running writer's folder stays
    live.mkdir()
    assert main(["bag", "from-nyu-raw", str(scene), str(tmp_path / "other")]) == 0  # another target: not its leftover
    assert leftover.exists()
    assert main(["bag", "from-nyu-raw", str(scene), str(tmp_path / "bag")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "bag", "other"])
