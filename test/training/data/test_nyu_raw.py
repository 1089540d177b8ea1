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


@pytest.mark.slow
def test_sync_pairs_each_depth_frame_with_the_nearest_rgb_frame(nyu_raw_dir):
    pairs = synchronise(nyu_raw_dir / scene_name(0))
    assert len(pairs) == 3
    for pair in pairs:
        assert 0.002 <= pair.rgb_stamp_s - pair.depth_stamp_s <= 0.014  # the RGB clock's few-ms offset
    assert [p.depth_stamp_s for p in pairs] == sorted(p.depth_stamp_s for p in pairs)


@pytest.mark.slow
def test_reader_ir_depth_equals_rendered_depth_after_undistortion(nyu_raw_dir):
    from scipy.ndimage import maximum_filter, minimum_filter

    reader = NYURawScenes(nyu_raw_dir)
    assert reader.scenes == [scene_name(s) for s in range(3)] and len(reader) == 9
    frames = [f for s in range(3) for f in generate_scene(7, s, 3, **SMALL)]
    for i, truth in enumerate(frames):
        depth, true = reader.read_ir_depth_m(i), truth.depth_ir_m
        # Away from surface edges (undistortion blends disparities there, as the toolbox's does; on a floor
        # seen at a grazing angle the bilinear blend also bends the slope), inside the range the < 600
        # rule keeps (raw 600 is 0.713 m) and inside the pinhole view.
        smooth = maximum_filter(true, 3) / minimum_filter(true, 3) < 1.03
        expected = smooth & (true > 0.75) & (true < 9.9)
        valid = np.isfinite(depth)
        assert valid[expected].mean() > 0.95  # only the ring the IR lens sees beyond the pinhole view is lost
        err = np.abs(depth - true)[expected & valid]
        bound = disparity_error_bound_m(true[expected & valid]) + 0.01 * true[expected & valid]
        assert np.all(err <= bound)
        assert not np.any(valid & (true < 0.7))  # raw values below 600 after undistortion are no reading


def _blob(shape, row, col, value, background):
    image = np.full(shape, background, dtype=np.float64)
    image[int(round(row)) - 1:int(round(row)) + 2, int(round(col)) - 1:int(round(col)) + 2] = value
    return image


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("camera", ["rgb", "depth"])
def test_undistortion_puts_a_recorded_point_where_the_pinhole_camera_sees_it(camera):
    """A point near the corner: the lens records it where Brown-Conrady with camera_params.m's
    coefficients says (written out here independently); undistorting brings it back to its pinhole pixel."""
    from rgbd_vae_training.data import nyu_calibration as cal

    fx, fy, cx, cy = cal.intrinsics(camera)
    k1, k2, p1, p2, k3 = cal.KC_RGB if camera == "rgb" else cal.KC_D
    row_u, col_u = 15.0, 20.0  # 0-based pinhole pixel
    x, y = (col_u + 1 - cx) / fx, (row_u + 1 - cy) / fy
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    row_d, col_d = yd * fy + cy - 1, xd * fx + cx - 1
    assert np.hypot(row_d - row_u, col_d - col_u) > 3  # the lens moves it visibly at the corner
    if camera == "rgb":
        recorded = np.repeat(_blob((480, 640), row_d, col_d, 255, 0)[..., None], 3, axis=2).astype(np.uint8)
        found = _centroid(cal.undistort_rgb(recorded)[..., 0] > 100)
    else:  # a near object (raw 700) in front of a far wall (raw 1000)
        undistorted = cal.undistort_raw_depth(_blob((480, 640), row_d, col_d, 700, 1000).astype(np.uint16))
        found = _centroid(undistorted < 850)
    assert np.hypot(found[0] - row_u, found[1] - col_u) < 1.0


def test_undistorted_depth_drops_values_below_600_and_everything_touched_by_a_hole():
    from rgbd_vae_training.data.nyu_calibration import NO_READING, undistort_raw_depth

    raw = np.full((480, 640), 900, dtype=np.uint16)
    raw[200:260, 300:340] = 590  # nearer than 0.71 m: the toolbox drops it
    raw[100:110, 100:110] = NO_READING
    out = undistort_raw_depth(raw)
    assert np.all(out[215:245, 310:330] == NO_READING)
    assert np.all(out[102:108, 102:108] == NO_READING)
    holes = out == NO_READING
    assert 0.005 < holes.mean() < 0.1  # the two patches (grown by a pixel) and the empty corners
    assert np.allclose(out[300:400, 400:500], 900, atol=1e-3)  # a flat wall stays what it was


def test_a_depth_file_in_standard_pgm_byte_order_is_refused_with_the_reason(tmp_path, nyu_raw_dir):
    import shutil

    from rgbd_vae_training.data.netpbm import read_pgm

    scene = tmp_path / "office_0001"
    shutil.copytree(nyu_raw_dir / scene_name(0), scene)
    depth_file = sorted(scene.glob("d-*.pgm"))[0]
    raw = read_pgm(depth_file)
    height, width = raw.shape
    depth_file.write_bytes(b"P5\n%d %d\n65535\n" % (width, height) + raw.astype(">u2").tobytes())
    reader = NYURawScenes(scene)
    with pytest.raises(DataError, match="big-endian.*little-endian"):
        reader[0]


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
    # Undistortion blends disparities across surface edges (the toolbox's does too): judge pixels off them.
    from scipy.ndimage import maximum_filter, minimum_filter

    true = np.nan_to_num(truth.depth_rgb_m, nan=10.0)
    judged = valid & (maximum_filter(true, 5) / minimum_filter(true, 5) < 1.1)
    assert ok[judged].mean() > 0.995
    # The check can fail: the same depth moved by 3 px misses the edges.
    shifted = np.roll(registered, 3, axis=1)
    assert _matches_within_one_pixel(shifted, truth.depth_rgb_m, tol)[judged & np.isfinite(shifted)].mean() < 0.99


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
