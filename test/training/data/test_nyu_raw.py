"""Generator -> NYU raw scene folders -> raw reader: sync, disparity decoding, registration."""

import numpy as np
import pytest

from rgbd_vae_training.data import DataError
from rgbd_vae_training.data.nyu_calibration import disparity_error_bound_m, disparity_to_m, m_to_disparity
from rgbd_vae_training.data.nyu_raw import NYURawScenes, synchronise
from rgbd_vae_training.synth.generate import generate_scene, scene_name

SMALL = {"width": 160, "height": 120}


def test_disparity_encoding_error_stays_within_the_stated_bound():
    depth = np.linspace(0.35, 9.9, 5000)
    decoded = disparity_to_m(m_to_disparity(depth)).astype(np.float64)
    assert np.all(np.abs(decoded - depth) <= disparity_error_bound_m(depth) + 1e-6)
    # At 9 m one disparity step is ~23 cm, so half a step (the bound) is ~11.7 cm.
    assert disparity_error_bound_m(9.0) == pytest.approx(0.1168, abs=1e-3)


def test_out_of_range_depth_has_no_reading():
    raw = m_to_disparity(np.array([np.nan, 0.1, 10.5, np.inf, 2.0]))
    assert raw.tolist()[:4] == [2047] * 4 and raw[4] < 2047
    assert np.isnan(disparity_to_m(np.array([2047]))).all()


def test_sync_pairs_each_depth_frame_with_the_nearest_rgb_frame(nyu_raw_dir):
    pairs = synchronise(nyu_raw_dir / scene_name(0))
    assert len(pairs) == 3
    for pair in pairs:
        assert 0.002 <= pair.rgb_stamp_s - pair.depth_stamp_s <= 0.014  # the RGB clock's few-ms offset
    assert [p.depth_stamp_s for p in pairs] == sorted(p.depth_stamp_s for p in pairs)


def test_reader_ir_depth_equals_rendered_depth_within_disparity_quantisation(nyu_raw_dir):
    reader = NYURawScenes(nyu_raw_dir)
    assert reader.scenes == [scene_name(s) for s in range(3)] and len(reader) == 9
    frames = [f for s in range(3) for f in generate_scene(7, s, 3, **SMALL)]
    for i, truth in enumerate(frames):
        depth = reader.read_ir_depth_m(i)
        expected_valid = (truth.depth_ir_m > 0.33) & (truth.depth_ir_m < 9.9)
        assert np.array_equal(np.isfinite(depth) & expected_valid, expected_valid)
        err = np.abs(depth - truth.depth_ir_m)[expected_valid]
        assert np.all(err <= disparity_error_bound_m(truth.depth_ir_m[expected_valid]) + 1e-5)


def _matches_within_one_pixel(registered, truth, tol):
    """For each registered pixel: does the true depth at it or at a neighbour agree within tol?"""
    h, w = truth.shape
    padded = np.pad(truth, 1, constant_values=np.nan)
    best = np.full(truth.shape, np.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            best = np.fmin(best, np.abs(registered - padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]))
    return best <= tol


def test_registered_depth_lands_on_the_rgb_pixel_of_the_surface_within_one_pixel(nyu_raw_dir):
    reader = NYURawScenes(nyu_raw_dir)
    truth = next(generate_scene(7, 0, 1, **SMALL))
    registered = reader[0].depth_m
    valid = np.isfinite(registered)
    assert valid.mean() > 0.6  # the IR camera's narrower view leaves the borders empty, as on NYU
    tol = disparity_error_bound_m(np.nan_to_num(truth.depth_rgb_m, nan=10.0)) + 0.02
    ok = _matches_within_one_pixel(registered, truth.depth_rgb_m, tol)
    edges = np.zeros_like(valid)
    edges[:, 1:] |= truth.object_id_rgb[:, 1:] != truth.object_id_rgb[:, :-1]
    assert edges[valid].sum() > 50, "the scene should have object edges in view"
    assert ok[valid].mean() > 0.995
    # The check can fail: the same depth moved by 3 px misses the edges.
    shifted = np.roll(registered, 3, axis=1)
    assert _matches_within_one_pixel(shifted, truth.depth_rgb_m, tol)[valid & np.isfinite(shifted)].mean() < 0.99


def test_frames_carry_scene_and_depth_stamp(nyu_raw_dir):
    frame = NYURawScenes(nyu_raw_dir)[4]
    assert frame.scene == scene_name(1) and frame.rgb_u8.shape == (120, 160, 3) and frame.rgb_u8.dtype == np.uint8
    assert frame.stamp_s == pytest.approx(1_300_001_000.0 + 1 / 30)


def test_scene_folder_without_depth_frames_is_refused(tmp_path, nyu_raw_dir):
    scene = tmp_path / "empty_scene"
    scene.mkdir()
    for rgb in (nyu_raw_dir / scene_name(0)).glob("r-*.ppm"):
        (scene / rgb.name).write_bytes(rgb.read_bytes())
    with pytest.raises(DataError, match="has no depth frames"):
        synchronise(scene)
    with pytest.raises(DataError, match="holds no NYU raw scene folder"):
        NYURawScenes(tmp_path)


def test_truncated_depth_frame_is_reported_with_its_name(tmp_path, nyu_raw_dir):
    scene = tmp_path / "scene"
    scene.mkdir()
    for f in (nyu_raw_dir / scene_name(0)).iterdir():
        (scene / f.name).write_bytes(f.read_bytes())
    victim = sorted(scene.glob("d-*.pgm"))[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataError, match=f"{victim.name}.* is truncated"):
        NYURawScenes(scene)[0]


def test_ros_camera_matrix_is_the_toolbox_calibration_in_0_based_pixels():
    from rgbd_vae_training.data.nyu_calibration import camera_matrix_ros, intrinsics

    point = np.array([0.4, -0.3, 2.0])
    fx, fy, cx, cy = intrinsics("rgb")
    toolbox_pixel = np.array([fx * point[0] / point[2] + cx, fy * point[1] / point[2] + cy])  # 1-based
    ros_pixel = (camera_matrix_ros("rgb") @ point)[:2] / point[2]
    np.testing.assert_allclose(ros_pixel, toolbox_pixel - 1)
    np.testing.assert_allclose(camera_matrix_ros("depth", 320, 240)[0, 0], 582.624482 / 2)
