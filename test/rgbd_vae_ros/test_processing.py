"""The shared normalisation and resizing (one definition for training, export and nodes)."""

import numpy as np
import pytest

from rgbd_vae_ros.processing import (
    depth_from_unit_range,
    depth_to_unit_range,
    resize_depth,
    resize_rgb,
    rgb_from_unit_range,
    rgb_to_unit_range,
    valid_depth_mask,
)


def test_rgb_unit_range_round_trips_every_value():
    rgb = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    unit = rgb_to_unit_range(rgb)
    assert unit.dtype == np.float32 and unit.min() == -1.0 and unit.max() == 1.0
    np.testing.assert_array_equal(rgb_from_unit_range(unit), rgb)
    np.testing.assert_array_equal(rgb_from_unit_range(np.array([-3.0, 3.0])), [0, 255])


def test_depth_unit_range_maps_metres_and_marks_invalid():
    depth = np.array([0.0, 2.5, 5.0, 10.0, 12.0, np.nan, -1.0, np.inf], np.float32)
    unit, valid = depth_to_unit_range(depth, max_depth_m=10.0)
    np.testing.assert_array_equal(valid, [False, True, True, True, True, False, False, False])
    np.testing.assert_allclose(unit[:5], [-1.0, -0.5, 0.0, 1.0, 1.0])
    assert np.all(unit[~valid] == -1.0)
    np.testing.assert_allclose(depth_from_unit_range(unit[1:4], 10.0), [2.5, 5.0, 10.0])


def test_decoded_depth_is_none_where_the_frame_had_no_reading_or_the_decoder_sits_at_max_depth():
    from rgbd_vae_ros.processing import decoded_planes

    recon = np.zeros((5, 2, 3), np.float32)
    recon[3] = [[0.0, 0.5, 1.0], [-0.5, 0.999, 1.0]]  # depth in [-1, 1]: 1 is max depth, "this far or farther"
    recon[4] = [[1.0, -0.2, 1.0], [0.3, 0.3, -1.0]]  # validity: below 0, the encoded frame had no reading
    rgb, depth_m, published = decoded_planes(recon, 8.0)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(published, [[True, False, False], [True, True, False]])
    np.testing.assert_allclose(depth_m[published], [4.0, 2.0, 7.996], rtol=1e-5)
    assert np.isnan(depth_m[~published]).all()  # never max depth published as a reading


def test_valid_mask_is_finite_and_positive():
    np.testing.assert_array_equal(valid_depth_mask(np.array([np.nan, 0, -2, 1e-3, np.inf])), [0, 0, 0, 1, 0])


def test_resize_rgb_area_average_and_identity():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2, :2] = 200
    small = resize_rgb(rgb, 2, 2)
    np.testing.assert_array_equal(small[..., 0], [[200, 0], [0, 0]])
    assert resize_rgb(rgb, 4, 4) is rgb
    assert resize_rgb(rgb, 9, 7).shape == (9, 7, 3)


def test_resize_depth_averages_only_valid_readings_and_keeps_holes():
    depth = np.array([[1.0, np.nan, 4.0, 4.0],
                      [3.0, np.nan, 4.0, 4.0],
                      [np.nan, np.nan, 2.0, np.nan],
                      [np.nan, np.nan, np.nan, np.nan]], np.float32)
    small = resize_depth(depth, 2, 2)
    assert small[0, 0] == pytest.approx(2.0)  # mean of 1 and 3, ignoring the holes
    assert small[0, 1] == pytest.approx(4.0)
    assert np.isnan(small[1, 0])  # nothing valid
    assert np.isnan(small[1, 1])  # 1 of 4 valid is under the half needed


def test_resize_depth_of_a_plane_is_exact_when_upsampling():
    depth = np.tile(np.linspace(1, 4, 8, dtype=np.float32), (6, 1))
    big = resize_depth(depth, 12, 16)
    assert np.all(np.isfinite(big)) and big.min() >= 1.0 and big.max() <= 4.0
    assert np.all(np.diff(big, axis=1) >= -1e-6)


def test_resize_weight_cache_stays_within_its_byte_bound_and_results_do_not_change():
    from rgbd_vae_ros import processing

    cache = processing._RESIZE_WEIGHTS
    cache.clear()
    rgb = np.random.default_rng(0).integers(0, 256, (4, 1200, 3), dtype=np.uint8)
    first = resize_rgb(rgb[:, :1000], 2, 80)
    for width in range(1000, 1150):  # 150 distinct widths, 80 x ~1000 x 4 bytes each: ~50 MB uncapped
        resize_rgb(rgb[:, :width], 2, 80)
        assert cache.nbytes <= cache.max_bytes
    assert cache.nbytes == sum(w.nbytes for w in cache._entries.values())
    assert 0 < len(cache) < 150 and (1000, 80) not in cache._entries  # the oldest went first
    np.testing.assert_array_equal(resize_rgb(rgb[:, :1000], 2, 80), first)  # rebuilt, identical


def test_resize_weights_of_a_repeated_size_are_served_from_the_cache():
    from rgbd_vae_ros import processing

    weights = processing._resize_weights(640, 80)
    assert processing._resize_weights(640, 80) is weights
    for size_in in range(300, 340):  # other sizes in between do not evict a recently used one
        processing._resize_weights(size_in, 40)
        assert processing._resize_weights(640, 80) is weights
    np.testing.assert_array_equal(weights, processing._build_resize_weights(640, 80))


def test_a_resize_matrix_larger_than_the_cache_is_built_but_not_kept(monkeypatch):
    from rgbd_vae_ros import processing

    small = processing._WeightCache(max_bytes=1000)
    monkeypatch.setattr(processing, "_RESIZE_WEIGHTS", small)
    out = resize_rgb(np.full((40, 40, 3), 7, np.uint8), 20, 20)  # 20 x 40 x 4 = 3200 bytes a matrix
    assert (out == 7).all() and small.nbytes == 0 and len(small) == 0
