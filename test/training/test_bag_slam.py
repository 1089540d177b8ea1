"""``rgbd-vae bag from-tum`` / ``from-7scenes``: sequences written by synth in the real TUM and
7-Scenes layouts (edited where a test needs real-set quirks), converted, and read back with rosbags."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from rgbd_vae_ros.bags import DEPTH_INFO_TOPIC, DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC, TF_STATIC_TOPIC, BagReader
from rgbd_vae_training.bag.convert import (
    BASE_FRAME,
    DEPTH_FRAME,
    GROUND_TRUTH_TOPIC,
    RGB_FRAME,
    TF_TOPIC,
    WORLD_FRAME,
    seconds_to_ns,
)
from rgbd_vae_training.bag.slam import SEVEN_SCENES_START_S
from rgbd_vae_training.cli import main
from rgbd_vae_training.data.nyu_calibration import camera_matrix_ros
from rgbd_vae_training.data.png_files import encode_png
from rgbd_vae_training.synth.slam_layouts import write_7scenes, write_tum

SMALL = {"width": 160, "height": 120}
FRAMES = 6
TUM_NAME = "rgbd_dataset_freiburg1_synth"  # a Freiburg 1 name: TUM's calibration of that sensor applies


# --- reading the sources and the bag independently of the converter ------------------------------------------

def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def _index(path: Path) -> list[tuple[float, str]]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [(float(r[0]), r[1]) for r in rows]


def _groundtruth(path: Path) -> dict[float, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {float(r[0]): np.array([float(v) for v in r[1:8]]) for r in rows}


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _image(msg) -> np.ndarray:
    if msg.encoding == "32FC1":
        return np.frombuffer(msg.data.tobytes(), np.float32).reshape(msg.height, msg.width)
    assert msg.encoding == "rgb8"
    return msg.data.reshape(msg.height, msg.width, 3)


def _matrix(rotation_xyzw, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(rotation_xyzw).as_matrix()
    m[:3, 3] = translation
    return m


def _transform(t) -> np.ndarray:
    r, p = t.transform.rotation, t.transform.translation
    return _matrix([r.x, r.y, r.z, r.w], [p.x, p.y, p.z])


def _pose(msg) -> tuple[np.ndarray, np.ndarray]:
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def _same_rotation(q_xyzw, q_expected) -> None:
    q, e = np.asarray(q_xyzw, float), np.asarray(q_expected, float) / np.linalg.norm(q_expected)
    assert np.isclose(np.linalg.norm(q), 1.0)
    np.testing.assert_allclose(q if np.dot(q, e) >= 0 else -q, e, atol=1e-7)  # q and -q are one rotation


def _read(bag_path: Path) -> tuple[dict, dict]:
    with BagReader(bag_path) as bag:
        topics = {t: (i.msgtype, i.count) for t, i in bag.topics.items()}
        recorded = [stamp for _, stamp, _ in bag.messages()]
        assert recorded == sorted(recorded)  # in time order, as a recorder writes
        messages = {t: list(bag.decoded(t)) for t in bag.topics}
    return topics, messages


def _check_tf(messages: dict, optical_frame: str, pose_messages) -> None:
    """/tf places camera_link so that camera_link -> optical frame (/tf_static) lands on the pose."""
    [(_, static)] = messages[TF_STATIC_TOPIC]
    assert [(t.header.frame_id, t.child_frame_id) for t in static.transforms] == [(BASE_FRAME, optical_frame)]
    base_from_optical = _transform(static.transforms[0])
    np.testing.assert_allclose(base_from_optical[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # looks along x
    tfs = messages[TF_TOPIC]
    assert len(tfs) == len(pose_messages)
    for (tf_stamp, tf), (pose_stamp, pose) in zip(tfs, pose_messages):
        [t] = tf.transforms
        assert (t.header.frame_id, t.child_frame_id) == (WORLD_FRAME, BASE_FRAME)
        assert tf_stamp == pose_stamp == _stamp_ns(t) == _stamp_ns(pose)
        position, quaternion = _pose(pose)
        np.testing.assert_allclose(_transform(t) @ base_from_optical, _matrix(quaternion, position), atol=1e-9)


# --- TUM ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tum_dir(tmp_path_factory) -> Path:
    """A TUM sequence as the real set has them: ground truth at its own times (not the depth
    stamps), a frame whose ground truth is missing, a quaternion with qw < 0, and depth holes."""
    root = tmp_path_factory.mktemp("tum")
    write_tum(root / "synth", scenes=2, frames=FRAMES, seed=4, **SMALL)
    sequence = root / TUM_NAME
    shutil.copytree(root / "synth" / "synth_room_0000", sequence)
    rows = _groundtruth(sequence / "groundtruth.txt")
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    for k, (stamp, values) in enumerate(sorted(rows.items())):
        if k == 3:
            continue  # no ground truth for the fourth frame
        if k == 1:
            values = np.concatenate([values[:3], -values[3:]])  # the same rotation, qw < 0
        lines.append(f"{stamp + 0.0047 * (k % 2):.4f} " + " ".join(f"{v:.9f}" for v in values))
    lines.append(f"{max(rows) + 5:.4f} 9 9 9 0 0 0 1")  # long after the last frame: no frame's
    (sequence / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    [(_, depth_name), *_] = _index(sequence / "depth.txt")
    raw = _png(sequence / depth_name)
    raw[:10, :20] = 0  # no reading
    raw[50, 60] = 5000  # exactly 1 m
    (sequence / depth_name).write_bytes(encode_png(raw))
    return sequence


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_tum_sequence_reads_back_with_stamps_depth_intrinsics_and_ground_truth(tum_dir, tmp_path, storage):
    out = tmp_path / "bag"
    assert main(["bag", "from-tum", str(tum_dir), str(out), "--storage", storage]) == 0
    topics, messages = _read(out)
    assert topics == {RGB_TOPIC: ("sensor_msgs/msg/Image", FRAMES), DEPTH_TOPIC: ("sensor_msgs/msg/Image", FRAMES),
                      RGB_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", FRAMES),
                      DEPTH_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", FRAMES),
                      TF_STATIC_TOPIC: ("tf2_msgs/msg/TFMessage", 1),
                      GROUND_TRUTH_TOPIC: ("geometry_msgs/msg/PoseStamped", FRAMES - 1),
                      TF_TOPIC: ("tf2_msgs/msg/TFMessage", FRAMES - 1)}

    rgb_index, depth_index = _index(tum_dir / "rgb.txt"), _index(tum_dir / "depth.txt")
    for (stamp, msg), (source_s, name) in zip(messages[RGB_TOPIC], rgb_index, strict=True):
        assert stamp == _stamp_ns(msg) == seconds_to_ns(source_s) and msg.header.frame_id == RGB_FRAME
        np.testing.assert_array_equal(_image(msg), _png(tum_dir / name))
    for k, ((stamp, msg), (source_s, name)) in enumerate(zip(messages[DEPTH_TOPIC], depth_index, strict=True)):
        assert stamp == _stamp_ns(msg) == seconds_to_ns(source_s)
        assert msg.encoding == "32FC1" and msg.header.frame_id == RGB_FRAME  # registered to RGB, as TUM's is
        raw, depth = _png(tum_dir / name), _image(msg)
        np.testing.assert_array_equal(np.isnan(depth), raw == 0)
        np.testing.assert_allclose(depth[raw > 0], raw[raw > 0] / 5000.0, rtol=1e-6)
        if k == 0:
            assert depth[50, 60] == 1.0 and np.isnan(depth[:10, :20]).all()

    fx, fy, cx, cy = 517.3 / 4, 516.5 / 4, (318.6 + 0.5) / 4 - 0.5, (255.3 + 0.5) / 4 - 0.5  # freiburg1 at 160x120
    for topic, images in ((RGB_INFO_TOPIC, RGB_TOPIC), (DEPTH_INFO_TOPIC, DEPTH_TOPIC)):
        for (stamp, info), (image_stamp, image) in zip(messages[topic], messages[images], strict=True):
            assert (info.width, info.height) == (160, 120) and stamp == image_stamp
            assert info.header.frame_id == image.header.frame_id
            np.testing.assert_allclose(info.k.reshape(3, 3), [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-12)
            assert info.distortion_model == "plumb_bob"  # Freiburg 1 images are distorted; registered depth too
            np.testing.assert_array_equal(info.d, [0.2624, -0.9531, -0.0054, 0.0026, 1.1633])

    # ground truth: each frame's nearest row (within 0.02 s) at that row's own time, as in the file
    truth = _groundtruth(tum_dir / "groundtruth.txt")
    frames_with_pose = [s for k, (s, _) in enumerate(depth_index) if k != 3]
    poses = messages[GROUND_TRUTH_TOPIC]
    for (stamp, msg), depth_s in zip(poses, frames_with_pose, strict=True):
        row_s = min(truth, key=lambda t: abs(t - depth_s))
        assert abs(row_s - depth_s) < 0.02 and stamp == _stamp_ns(msg) == seconds_to_ns(row_s)
        assert msg.header.frame_id == WORLD_FRAME
        position, quaternion = _pose(msg)
        np.testing.assert_allclose(position, truth[row_s][:3], atol=1e-12)
        _same_rotation(quaternion, truth[row_s][3:])
    offsets_s = [(stamp - seconds_to_ns(d)) / 1e9 for (stamp, _), d in zip(poses, frames_with_pose)]
    assert sum(abs(o) > 0.004 for o in offsets_s) == 2  # the two rows moved 4.7 ms keep their own time
    _check_tf(messages, RGB_FRAME, poses)


def test_tum_intrinsics_given_apply_as_given_and_an_unnamed_sensor_needs_them(tum_dir, tmp_path, capsys):
    unnamed = tmp_path / "my_sequence"
    shutil.copytree(tum_dir, unnamed)
    assert main(["bag", "from-tum", str(unnamed), str(tmp_path / "a")]) == 1
    assert "names no Freiburg sensor" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["bag", "from-tum", str(unnamed), str(tmp_path / "a"), "--intrinsics", "130", "131", "79.5", "60"]) == 0
    _, messages = _read(tmp_path / "a")
    for _, info in messages[RGB_INFO_TOPIC] + messages[DEPTH_INFO_TOPIC]:
        np.testing.assert_array_equal(info.k.reshape(3, 3), [[130, 0, 79.5], [0, 131, 60], [0, 0, 1]])
        np.testing.assert_array_equal(info.d, np.zeros(5))


def test_synth_output_converts_with_the_camera_synth_rendered(tum_dir, seven_dir, tmp_path):
    synth = tum_dir.parent / "synth"
    assert main(["bag", "from-synth", str(synth), str(tmp_path / "tum"), "--scene", "synth_room_0001"]) == 0
    assert main(["bag", "from-synth", str(seven_dir), str(tmp_path / "7s")]) == 0
    _, tum = _read(tmp_path / "tum")
    _, seven = _read(tmp_path / "7s")
    assert len(tum[GROUND_TRUTH_TOPIC]) == len(seven[GROUND_TRUTH_TOPIC]) == FRAMES
    rgb, ir = camera_matrix_ros("rgb", 160, 120), camera_matrix_ros("depth", 160, 120)
    for messages, depth_k in ((tum, rgb), (seven, ir)):
        np.testing.assert_allclose(messages[RGB_INFO_TOPIC][0][1].k.reshape(3, 3), rgb)
        np.testing.assert_allclose(messages[DEPTH_INFO_TOPIC][0][1].k.reshape(3, 3), depth_k)


# --- 7-Scenes -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seven_dir(tmp_path_factory) -> Path:
    """One 7-Scenes scene with a frame whose depth holds 65535 and 0 (no reading) and 65534 (65.5 m)."""
    root = tmp_path_factory.mktemp("seven")
    write_7scenes(root, scenes=1, frames=FRAMES, seed=6, **SMALL)
    depth_path = root / "synth_room_0000" / "seq-01" / "frame-000001.depth.png"
    raw = _png(depth_path)
    raw[:8, :8], raw[8:16, :8], raw[0, 100] = 65535, 0, 65534
    depth_path.write_bytes(encode_png(raw))
    return root


def _seven_files(seven_dir: Path, kind: str) -> list[Path]:
    return sorted((seven_dir / "synth_room_0000" / "seq-01").glob(f"frame-*.{kind}"))


@pytest.mark.parametrize("rate", [None, 15.0])
def test_7scenes_sequence_reads_back_with_index_stamps_invalid_65535_and_poses(seven_dir, tmp_path, rate):
    out = tmp_path / "bag"
    assert main(["bag", "from-7scenes", str(seven_dir), str(out), *(["--rate", str(rate)] if rate else [])]) == 0
    topics, messages = _read(out)
    assert topics == {RGB_TOPIC: ("sensor_msgs/msg/Image", FRAMES), DEPTH_TOPIC: ("sensor_msgs/msg/Image", FRAMES),
                      RGB_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", FRAMES),
                      DEPTH_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", FRAMES),
                      TF_STATIC_TOPIC: ("tf2_msgs/msg/TFMessage", 1),
                      GROUND_TRUTH_TOPIC: ("geometry_msgs/msg/PoseStamped", FRAMES),
                      TF_TOPIC: ("tf2_msgs/msg/TFMessage", FRAMES)}
    expected_ns = [seconds_to_ns(SEVEN_SCENES_START_S + k / (rate or 30.0)) for k in range(FRAMES)]
    for topic in (RGB_TOPIC, DEPTH_TOPIC, RGB_INFO_TOPIC, DEPTH_INFO_TOPIC, GROUND_TRUTH_TOPIC, TF_TOPIC):
        assert [s for s, _ in messages[topic]] == expected_ns
    for (_, msg), path in zip(messages[RGB_TOPIC], _seven_files(seven_dir, "color.png"), strict=True):
        assert msg.header.frame_id == RGB_FRAME
        np.testing.assert_array_equal(_image(msg), _png(path))
    for k, ((stamp, msg), path) in enumerate(zip(messages[DEPTH_TOPIC], _seven_files(seven_dir, "depth.png"),
                                                 strict=True)):
        assert _stamp_ns(msg) == stamp and msg.header.frame_id == DEPTH_FRAME  # unregistered: the depth camera's
        raw, depth = _png(path), _image(msg)
        invalid = (raw == 0) | (raw == 65535)
        np.testing.assert_array_equal(np.isnan(depth), invalid)
        np.testing.assert_allclose(depth[~invalid], raw[~invalid] / 1000.0, rtol=1e-6)
        assert not (depth > 65.0).any() or k == 1
        if k == 1:
            assert np.isnan(depth[:16, :8]).all() and np.isclose(depth[0, 100], 65.534)
            assert np.nanmax(np.delete(depth.reshape(-1), 100)) < 10  # only the 65534 reading is far
    k = [[585 / 4, 0, (320 + 0.5) / 4 - 0.5], [0, 585 / 4, (240 + 0.5) / 4 - 0.5], [0, 0, 1]]  # 640x480 defaults
    for topic, frame_id in ((RGB_INFO_TOPIC, RGB_FRAME), (DEPTH_INFO_TOPIC, DEPTH_FRAME)):
        for _, info in messages[topic]:
            assert info.header.frame_id == frame_id and (info.width, info.height) == (160, 120)
            np.testing.assert_allclose(info.k.reshape(3, 3), k, rtol=1e-12)
    poses = messages[GROUND_TRUTH_TOPIC]
    for (_, msg), path in zip(poses, _seven_files(seven_dir, "pose.txt"), strict=True):
        truth = np.loadtxt(path)
        position, quaternion = _pose(msg)
        assert msg.header.frame_id == WORLD_FRAME
        np.testing.assert_allclose(position, truth[:3, 3], atol=1e-12)
        np.testing.assert_allclose(Rotation.from_quat(quaternion).as_matrix(), truth[:3, :3], atol=1e-7)
    _check_tf(messages, DEPTH_FRAME, poses)


# --- refusals: one sentence, exit 1 (2 for bad arguments), nothing written -----------------------------------

def _refused(argv: list[str], capsys, out: Path, expected: str, status: int = 1) -> None:
    before = sorted(out.parent.iterdir())
    if status == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert expected in error and error.endswith(".") and error.count(". ") == 0, error
    assert sorted(out.parent.iterdir()) == before  # no bag, no scratch folder


def test_input_that_is_not_the_layout_or_is_empty_is_refused_and_nothing_is_written(tum_dir, seven_dir, tmp_path,
                                                                                      capsys):
    out = tmp_path / "out" / "bag"
    out.parent.mkdir()
    _refused(["bag", "from-tum", str(seven_dir), str(out)], capsys, out, "holds no TUM RGB-D sequence")
    _refused(["bag", "from-7scenes", str(tum_dir), str(out)], capsys, out, "holds no 7-Scenes sequence")
    _refused(["bag", "from-tum", str(tmp_path / "nowhere"), str(out)], capsys, out, "does not exist")
    _refused(["bag", "from-tum", str(tum_dir.parent / "synth"), str(out)], capsys, out,
             "holds 2 TUM RGB-D sequences (synth_room_0000, synth_room_0001)")
    _refused(["bag", "from-7scenes", str(seven_dir), str(out), "--scene", "seq-09"], capsys, out,
             "has no 7-Scenes sequence 'seq-09'")
    empty = tmp_path / "rgbd_dataset_freiburg2_empty"
    empty.mkdir()
    for name in ("rgb.txt", "depth.txt"):
        (empty / name).write_text("# timestamp filename\n")
    _refused(["bag", "from-tum", str(empty), str(out)], capsys, out, "has no depth image with an RGB image")
    _refused(["bag", "from-7scenes", str(seven_dir), str(out), "--rate", "-30"], capsys, out,
             "is not a positive frame rate", status=2)
    _refused(["bag", "from-tum", str(tum_dir), str(out), "--intrinsics", "0", "500", "80", "60"], capsys, out,
             "positive focal lengths")
    scenes = tmp_path / "scenes"
    for name in ("chess", "office"):
        shutil.copytree(seven_dir / "synth_room_0000", scenes / name)
    _refused(["bag", "from-7scenes", str(scenes), str(out)], capsys, out,
             "holds 2 7-Scenes sequences (chess/seq-01, office/seq-01)")
    _refused(["bag", "from-7scenes", str(scenes), str(out), "--scene", "seq-01"], capsys, out,
             "has 2 sequences named 'seq-01'")
    copy = tmp_path / "not_synth"
    shutil.copytree(seven_dir / "synth_room_0000", copy / "office")
    _refused(["bag", "from-synth", str(copy), str(out)], capsys, out, "convert it with bag from-7scenes")
    assert main(["bag", "from-7scenes", str(scenes / "office"), str(out), "--scene", "seq-01"]) == 0
    assert main(["bag", "from-7scenes", str(scenes), str(tmp_path / "chess"), "--scene", "chess/seq-01"]) == 0


def test_a_broken_frame_half_way_leaves_no_bag(seven_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(seven_dir / "synth_room_0000", broken / "chess")
    (broken / "chess" / "seq-01" / "frame-000004.pose.txt").write_text("1 2 3\n")
    out = tmp_path / "out" / "bag"
    out.parent.mkdir()
    _refused(["bag", "from-7scenes", str(broken), str(out)], capsys, out, "frame-000004.pose.txt")


def test_an_existing_output_is_kept_as_it_was(seven_dir, tmp_path, capsys):
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["bag", "from-7scenes", str(seven_dir), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


# --- the shared writer: time order across frames --------------------------------------------------------------

def _interleaved(skew_s: float, second_pose_s: float):
    """Two frames (depth at 1.000 s and 1.030 s) where the second's ground truth, at
    ``second_pose_s``, may precede the first's messages."""
    from rgbd_vae_training.bag.convert import BagFrame, Camera, Sequence, optical_transform

    rgb, depth = np.zeros((12, 16, 3), np.uint8), np.ones((12, 16), np.float32)
    k = lambda w, h: np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])  # noqa: E731
    camera = Camera(k, k, RGB_FRAME, [optical_transform(RGB_FRAME)])
    frames = [BagFrame(rgb, seconds_to_ns(1.015), depth, seconds_to_ns(1.000), np.eye(4), seconds_to_ns(1.001)),
              BagFrame(rgb, seconds_to_ns(1.031), depth, seconds_to_ns(1.030), np.eye(4),
                         seconds_to_ns(second_pose_s))]
    return Sequence("two frames", 2, lambda: iter(frames), camera, poses=True, max_skew_ns=seconds_to_ns(skew_s))


def test_messages_of_neighbouring_frames_are_recorded_in_time_order_or_refused(tmp_path):
    from rgbd_vae_training.bag.convert import write_sequence
    from rgbd_vae_training.data.errors import DataError

    for name, pose_s, before in (("a", 1.012, (RGB_TOPIC, 1.015)), ("b", 0.995, (DEPTH_TOPIC, 1.000))):
        counts = write_sequence(_interleaved(0.02, pose_s), tmp_path / name)
        assert counts[GROUND_TRUTH_TOPIC] == counts[RGB_TOPIC] == 2
        with BagReader(tmp_path / name) as bag:
            recorded = [(topic, stamp) for topic, stamp, _ in bag.messages()]
        assert [s for _, s in recorded] == sorted(s for _, s in recorded) and recorded[0][0] == TF_STATIC_TOPIC
        assert recorded.index((TF_TOPIC, seconds_to_ns(pose_s))) < recorded.index((before[0], seconds_to_ns(before[1])))
    # a sequence that promises no such overlap (depth stamps only) and has one is refused, and leaves nothing
    with pytest.raises(DataError, match="stamped before the frame ahead"):
        write_sequence(_interleaved(0.0, 0.995), tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
