"""TUM RGB-D, 7-Scenes, SUN RGB-D and rgb/ + depth/ PNG folders on files the tests write in each
layout: units, no-reading codes, association, poses, splits, paths, bad files, layout detection."""

import numpy as np
import pytest
from PIL import Image

from rgbd_vae_training.data import DataError, open_dataset
from rgbd_vae_training.data.detect import detect_layout
from rgbd_vae_training.data.png_files import encode_png, is_depth_png
from rgbd_vae_training.data.rgbd_png import RGBDPngFolder
from rgbd_vae_training.data.seven_scenes import SevenScenes
from rgbd_vae_training.data.sun_rgbd import SUNRGBD, rotate_depth, unrotate_depth
from rgbd_vae_training.data.tum import TUMSequences, associate, pose_from_tum, tum_from_pose

H, W = 6, 8


def _rgb(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def _depth(*values: int) -> np.ndarray:
    """A uint16 depth image whose first pixels hold ``values`` and the rest the first value."""
    image = np.full(H * W, values[0], np.uint16)
    image[:len(values)] = values
    return image.reshape(H, W)


def _write(path, blob):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


# --- TUM RGB-D ---------------------------------------------------------------------------------

def _tum_sequence(root, rgb_stamps, depth_stamps, groundtruth=None):
    """A TUM folder; RGB image k is filled with k, depth image k with 5000 * (k + 1) (k + 1 metres)."""
    for k, stamp in enumerate(rgb_stamps):
        _write(root / f"rgb/{stamp:.6f}.png", encode_png(_rgb(k)))
    for k, stamp in enumerate(depth_stamps):
        _write(root / f"depth/{stamp:.6f}.png", encode_png(_depth(0, 5000 * (k + 1), 65535)))
    (root / "rgb.txt").write_text("# color images\n# timestamp filename\n"
                                  + "".join(f"{s:.6f} rgb/{s:.6f}.png\n" for s in rgb_stamps))
    (root / "depth.txt").write_text("# depth maps\n\n" + "".join(f"{s:.6f} depth/{s:.6f}.png\n" for s in depth_stamps))
    if groundtruth is not None:
        (root / "groundtruth.txt").write_text("# timestamp tx ty tz qx qy qz qw\n" + "".join(
            f"{s:.4f} " + " ".join(f"{v:.9f}" for v in values) + "\n" for s, values in groundtruth))
    return root


def test_tum_pairs_rgb_and_depth_by_nearest_stamp_each_once_within_20_ms(tmp_path):
    # depth 1.010 is nearest to RGB 1.000 and 1.025; the closer pair wins, RGB 1.025 pairs nothing else in reach;
    # RGB 2.000 and depth 1.500 have no partner within 0.02 s
    seq = _tum_sequence(tmp_path / "rgbd_dataset_freiburg1_desk", [1.000, 1.025, 1.060, 2.000],
                        [1.010, 1.065, 1.500])
    reader = TUMSequences(seq)
    assert [(f.rgb_stamp_s, f.depth_stamp_s) for f in reader.frames] == [(1.0, 1.01), (1.06, 1.065)]
    frame = reader[1]
    assert frame.rgb_u8[0, 0, 0] == 2 and frame.stamp_s == 1.065
    assert np.isnan(frame.depth_m[0, 0])  # 0 = no reading
    assert frame.depth_m[0, 1] == pytest.approx(2.0)  # 10000 / 5000
    assert frame.depth_m[0, 2] == pytest.approx(65535 / 5000)  # TUM has no 65535 code: a far reading
    assert frame.pose is None  # no groundtruth.txt
    assert frame.intrinsics == (517.3, 516.5, 318.6, 255.3)  # TUM's Freiburg 1 calibration
    assert associate(np.array([0.0, 0.01]), np.array([0.006])) == [(1, 0)]


def test_tum_poses_are_the_groundtruth_lines_nearest_each_depth_stamp(tmp_path):
    rng = np.random.default_rng(0)
    q = rng.normal(size=4)
    q = q / np.linalg.norm(q) * np.sign(q[3])
    truth = [(1.007, (1.0, 2.0, 3.0, *q)), (1.012, (9.0, 9.0, 9.0, 0.0, 0.0, 0.0, 1.0))]
    seq = _tum_sequence(tmp_path / "seq", [1.0, 3.0], [1.005, 3.0], groundtruth=truth)
    reader = TUMSequences(seq)
    pose = reader[0].pose
    np.testing.assert_allclose(pose, pose_from_tum(truth[0][1]))
    np.testing.assert_allclose(pose[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(tum_from_pose(pose), truth[0][1], atol=1e-9)
    assert reader[1].pose is None  # the nearest ground truth is 2 s away
    assert reader[0].intrinsics is None  # no Freiburg sensor in the name


@pytest.mark.parametrize("name", ["../secret.png", "rgb/../../secret.png", "/etc/passwd", "C:\\secret.png"])
def test_tum_index_paths_that_leave_the_data_folder_are_refused(tmp_path, name):
    seq = _tum_sequence(tmp_path / "seq", [1.0], [1.0])
    (seq / "rgb.txt").write_text(f"1.000000 {name}\n")
    with pytest.raises(DataError, match=r"rgb\.txt names .*, a path outside the data folder"):
        TUMSequences(seq)


def test_tum_index_path_through_a_link_out_of_the_folder_is_refused(tmp_path):
    seq = _tum_sequence(tmp_path / "seq", [1.0], [1.0])
    (tmp_path / "elsewhere").mkdir()
    (seq / "outside").symlink_to(tmp_path / "elsewhere")
    (seq / "rgb.txt").write_text("1.000000 outside/x.png\n")
    with pytest.raises(DataError, match="leads outside .* through a link"):
        TUMSequences(seq)


def test_tum_missing_corrupt_and_malformed_files_are_refused_in_one_sentence(tmp_path):
    seq = _tum_sequence(tmp_path / "seq", [1.0, 2.0], [1.0, 2.0])
    (seq / "depth/1.000000.png").unlink()
    (seq / "rgb/2.000000.png").write_bytes(b"not a png")
    reader = TUMSequences(seq)
    with pytest.raises(DataError, match=r"^depth image '.*1\.000000\.png' is missing$"):
        reader[0]
    with pytest.raises(DataError, match=r"2\.000000\.png' is not a readable RGB image"):
        reader[1]
    (seq / "depth.txt").write_text("1.0\n")
    with pytest.raises(DataError, match=r"^depth\.txt line 1 is '1\.0'; expected 2 fields$"):
        TUMSequences(seq)
    (seq / "depth.txt").write_text("one depth/1.000000.png\n")
    with pytest.raises(DataError, match="starts with 'one'; expected a time stamp"):
        TUMSequences(seq)
    (seq / "depth.txt").write_text("1.0 depth/2.000000.png\n")
    (seq / "groundtruth.txt").write_text("1.0 0 0 0 0 0 0 0\n")
    with pytest.raises(DataError, match="quaternion .* has no length"):
        TUMSequences(seq)
    with pytest.raises(DataError, match="holds no TUM RGB-D sequence"):
        TUMSequences(tmp_path / "seq" / "rgb")


def test_a_tum_rgb_entry_naming_a_depth_png_is_refused(tmp_path):
    seq = _tum_sequence(tmp_path / "seq", [1.0], [1.0])
    (seq / "rgb.txt").write_text("1.000000 depth/1.000000.png\n")
    with pytest.raises(DataError, match="is a 16-bit depth PNG; expected an RGB image"):
        TUMSequences(seq)[0]


# --- 7-Scenes ----------------------------------------------------------------------------------

def _seven_scenes_frame(seq, k, depth, pose=None):
    _write(seq / f"frame-{k:06d}.color.png", encode_png(_rgb(k)))
    _write(seq / f"frame-{k:06d}.depth.png", encode_png(depth))
    pose = np.eye(4) if pose is None else pose
    (seq / f"frame-{k:06d}.pose.txt").write_text("".join(" ".join(f"{v:.7e}" for v in row) + " \n" for row in pose))


def test_7scenes_16uc1_65535_and_0_are_no_reading_not_65_m(tmp_path):
    pose = np.eye(4)
    pose[:3, 3] = [0.1, -0.2, 1.5]
    _seven_scenes_frame(tmp_path / "chess" / "seq-01", 0, _depth(1234, 65535, 0, 65534), pose)
    frame = SevenScenes(tmp_path / "chess")[0]
    assert frame.depth_m[0, 0] == pytest.approx(1.234)
    assert np.isnan(frame.depth_m[0, 1]) and np.isnan(frame.depth_m[0, 2])
    assert frame.depth_m[0, 3] == pytest.approx(65.534)
    assert np.nanmax(frame.depth_m) < 65.535
    np.testing.assert_array_equal(frame.pose, pose)
    assert frame.scene == "chess/seq-01" and frame.rgb_u8.shape == (H, W, 3)


def test_7scenes_reads_a_sequence_a_scene_or_a_folder_of_scenes_and_honours_its_split_files(tmp_path):
    for scene in ("chess", "fire"):
        for seq in (1, 2, 3):
            _seven_scenes_frame(tmp_path / scene / f"seq-{seq:02d}", 0, _depth(1000))
        (tmp_path / scene / "TrainSplit.txt").write_text("sequence1\nsequence3\n")
        (tmp_path / scene / "TestSplit.txt").write_text("sequence2\n")
    assert len(SevenScenes(tmp_path)) == 6 and len(SevenScenes(tmp_path / "fire")) == 3
    assert SevenScenes(tmp_path / "fire" / "seq-02").frame_scenes == ["fire/seq-02"]
    assert SevenScenes(tmp_path, split="test").frame_scenes == ["chess/seq-02", "fire/seq-02"]
    assert SevenScenes(tmp_path, split="train").frame_scenes == ["chess/seq-01", "chess/seq-03", "fire/seq-01",
                                                                 "fire/seq-03"]
    (tmp_path / "fire" / "TestSplit.txt").write_text("seq 2\n")
    with pytest.raises(DataError, match="TestSplit.txt line 1 is 'seq 2'; expected 'sequenceN'"):
        SevenScenes(tmp_path, split="test")


def test_7scenes_missing_or_bad_pose_and_depth_are_refused_in_one_sentence(tmp_path):
    seq = tmp_path / "chess" / "seq-01"
    for k in range(3):
        _seven_scenes_frame(seq, k, _depth(1000))
    (seq / "frame-000000.pose.txt").unlink()
    (seq / "frame-000001.pose.txt").write_text("1 0 0\n0 1 0\n")
    (seq / "frame-000002.depth.png").write_bytes(encode_png(_rgb(3)))  # an 8-bit RGB image where depth belongs
    reader = SevenScenes(tmp_path)
    with pytest.raises(DataError, match=r"^7-Scenes pose '.*frame-000000\.pose\.txt' is missing$"):
        reader[0]
    with pytest.raises(DataError, match="holds 6 values; expected a finite 4x4 matrix"):
        reader[1]
    with pytest.raises(DataError, match="is a RGB image; expected a 16-bit single-channel depth PNG"):
        reader[2]


# --- SUN RGB-D ---------------------------------------------------------------------------------

def _sun_frame(folder, depth_mm, depth_dir="depth"):
    _write(folder / "image" / f"{folder.name}.jpg", encode_png(_rgb(90)))  # PIL sniffs the format
    _write(folder / depth_dir / f"{folder.name}.png", encode_png(rotate_depth(depth_mm)))
    (folder / "intrinsics.txt").write_text("518.857901 0 284.582449\n0 519.469611 208.736166\n0 0 1\n")


def test_sun_rgbd_depth_bits_are_rotated_back_to_millimetres(tmp_path):
    _sun_frame(tmp_path / "kv1" / "NYUdata" / "NYU0001", _depth(1500, 0, 8191))
    stored = np.asarray(Image.open(tmp_path / "kv1/NYUdata/NYU0001/depth/NYU0001.png"))
    assert stored[0, 0] == 12000 and stored[0, 2] == 65528  # what a plain read would take for mm
    frame = SUNRGBD(tmp_path)[0]
    assert frame.depth_m[0, 0] == pytest.approx(1.5) and np.isnan(frame.depth_m[0, 1])
    assert frame.depth_m[0, 2] == pytest.approx(8.191)
    assert frame.intrinsics == pytest.approx((518.857901, 519.469611, 283.582449, 207.736166))  # 0-based centre
    assert frame.pose is None and frame.scene == "NYU0001"
    assert unrotate_depth(np.array([0b0000_0000_0000_1001], np.uint16))[0] == 0b0010_0000_0000_0001


def test_sun_rgbd_falls_back_to_depth_bfx_and_refuses_a_frame_without_depth(tmp_path):
    _sun_frame(tmp_path / "a", _depth(2000), depth_dir="depth_bfx")
    assert SUNRGBD(tmp_path / "a")[0].depth_m[0, 0] == pytest.approx(2.0)
    _sun_frame(tmp_path / "b", _depth(2000))
    (tmp_path / "b" / "depth" / "b.png").unlink()
    with pytest.raises(DataError, match=r"SUN RGB-D frame '.*b' lacks its depth file"):
        SUNRGBD(tmp_path)[1]


# --- rgb/ + depth/ PNG folders -------------------------------------------------------------------

def test_rgbd_png_folder_pairs_by_stem_and_scales_by_the_given_units(tmp_path):
    for name in ("a", "b"):
        _write(tmp_path / "rgb" / f"{name}.png", encode_png(_rgb(ord(name))))
    _write(tmp_path / "depth" / "a.png", encode_png(_depth(1000, 0)))
    _write(tmp_path / "depth" / "b.png", encode_png(_depth(2500)))
    mm = RGBDPngFolder(tmp_path, depth_scale=1000, intrinsics=(500.0, 501.0, 3.5, 2.5))
    assert len(mm) == 2 and mm[1].rgb_u8[0, 0, 0] == ord("b") and mm[1].depth_m[0, 0] == pytest.approx(2.5)
    assert np.isnan(mm[0].depth_m[0, 1]) and mm[0].intrinsics == (500.0, 501.0, 3.5, 2.5)
    assert RGBDPngFolder(tmp_path, depth_scale=5000)[1].depth_m[0, 0] == pytest.approx(0.5)
    reader = open_dataset(tmp_path, depth_scale=1000)
    assert detect_layout(tmp_path) == "rgbd-png" and len(reader) == 2
    assert len(open_dataset(tmp_path, split="test", depth_scale=1000)) == 0  # one recording: nothing held out
    with pytest.raises(DataError, match="depth scale None .* give --depth-scale"):
        open_dataset(tmp_path)


def test_rgbd_png_folder_pairs_by_order_when_names_differ_and_refuses_unequal_counts(tmp_path):
    for k in range(2):
        _write(tmp_path / "color" / f"frame{k}.jpg", encode_png(_rgb(k)))
        _write(tmp_path / "depth" / f"d{k}.png", encode_png(_depth(1000 * (k + 1))))
    assert RGBDPngFolder(tmp_path, depth_scale=1000)[1].depth_m[0, 0] == pytest.approx(2.0)
    (tmp_path / "depth" / "d1.png").unlink()
    with pytest.raises(DataError, match="has 2 RGB images and .* 1 16-bit depth PNGs with other names"):
        RGBDPngFolder(tmp_path, depth_scale=1000)


# --- detection -----------------------------------------------------------------------------------

def test_every_rgbd_layout_is_detected_and_none_is_an_image_folder(tmp_path):
    _tum_sequence(tmp_path / "tum" / "rgbd_dataset_freiburg2_xyz", [1.0], [1.0])
    _seven_scenes_frame(tmp_path / "7scenes" / "chess" / "seq-01", 0, _depth(1000))
    _sun_frame(tmp_path / "sun" / "kv2" / "frame1", _depth(1000))
    _write(tmp_path / "png" / "rgb" / "0.png", encode_png(_rgb(1)))
    _write(tmp_path / "png" / "depth" / "0.png", encode_png(_depth(1)))
    expected = {"tum": "tum", "tum/rgbd_dataset_freiburg2_xyz": "tum", "7scenes": "7scenes",
                "7scenes/chess": "7scenes", "7scenes/chess/seq-01": "7scenes", "sun": "sun-rgbd",
                "sun/kv2/frame1": "sun-rgbd", "png": "rgbd-png"}
    assert {name: detect_layout(tmp_path / name) for name in expected} == expected
    assert len(open_dataset(tmp_path / "tum")) == len(open_dataset(tmp_path / "7scenes")) == 1
    assert open_dataset(tmp_path / "sun")[0].depth_m[0, 0] == pytest.approx(1.0)


def test_a_folder_of_depth_pngs_in_no_known_layout_is_never_taken_for_rgb_images(tmp_path):
    # 7-Scenes frames outside a seq-XX folder: no layout, and their depth must not become grey pictures
    _seven_scenes_frame(tmp_path / "chess" / "sequence_one", 0, _depth(1000))
    with pytest.raises(DataError, match=r"holds 16-bit depth PNGs \('chess/sequence_one/frame-000000\.depth\.png'\) "
                                        "in no RGB-D layout"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="16-bit depth PNGs"):
        open_dataset(tmp_path)
    (tmp_path / "chess" / "sequence_one" / "frame-000000.depth.png").unlink()
    assert detect_layout(tmp_path) == "image-folder"  # 8-bit RGB PNGs alone are an image folder
    assert is_depth_png(tmp_path / "chess" / "sequence_one" / "frame-000000.color.png") is False
    _write(tmp_path / "grey.png", encode_png(np.zeros((H, W), np.uint8)))
    assert is_depth_png(tmp_path / "grey.png") is False and detect_layout(tmp_path) == "image-folder"
