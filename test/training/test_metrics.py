"""Metrics against values worked out by hand: the NYU protocol's validity, clamps, crop and averaging."""

import math

import numpy as np
import pytest

from rgbd_vae_training.metrics import average, depth_error, depth_metrics, eigen_crop_mask, psnr, ssim


def test_eigen_crop_is_rows_45_to_471_and_cols_41_to_601_at_480x640():
    mask = eigen_crop_mask(480, 640)
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and mask[470, 600] and not mask[44, 41] and not mask[45, 40]
    assert not mask[471, 100] and not mask[100, 601]
    half = eigen_crop_mask(240, 320)  # scaled with the image
    assert half.sum() == (236 - 22) * (300 - 20)


def test_a_uniform_ten_percent_overestimate_gives_the_textbook_numbers():
    gt = np.full((480, 640), 2.0, dtype=np.float32)
    pred = np.full_like(gt, 2.2)
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx(0.1)
    assert m["sq_rel"] == pytest.approx(0.04 / 2.0)
    assert m["rmse"] == pytest.approx(0.2)
    assert m["rmse_log"] == pytest.approx(math.log(1.1))
    assert m["log10"] == pytest.approx(math.log10(1.1))
    assert (m["delta1"], m["delta2"], m["delta3"]) == (1.0, 1.0, 1.0)


def test_invalid_ground_truth_clamps_and_the_crop_decide_which_pixels_count():
    gt = np.full((480, 640), 4.0, dtype=np.float32)
    pred = np.full_like(gt, 4.0)
    pred[:45] = 100.0  # outside the crop: ignored
    gt[100, 100:110] = np.nan  # no reading
    gt[101, 100:110] = 0.0  # no reading
    gt[102, 100:110] = 10.5  # beyond 10 m: not valid ground truth
    pred[100:103, 100:110] = 50.0  # wrong, but only where the ground truth is invalid
    assert depth_metrics(pred, gt)["abs_rel"] == 0.0
    # clamps: 20 m -> 10 m and -1 m -> 1e-3 m on two of the counted pixels
    pred[200, 200], pred[200, 201] = 20.0, -1.0
    n = (471 - 45) * (601 - 41) - 30
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((6.0 / 4.0 + (4.0 - 1e-3) / 4.0) / n)
    assert m["rmse"] == pytest.approx(math.sqrt((36.0 + (4.0 - 1e-3) ** 2) / n))
    assert m["delta1"] == pytest.approx((n - 2) / n)


def test_metrics_are_per_image_then_averaged_over_images():
    gt = np.full((4, 4), 1.0, dtype=np.float32)
    a = depth_metrics(np.full_like(gt, 1.5), gt, crop=False)  # abs_rel 0.5
    b = depth_metrics(np.full_like(gt, 1.0), gt, crop=False)  # abs_rel 0
    big = np.ones((40, 40), dtype=np.float32)
    c = depth_metrics(big * 1.1, big, crop=False)  # 100x the pixels of a, same weight
    mean = average([a, b, c, None])
    assert mean["abs_rel"] == pytest.approx((0.5 + 0.0 + 0.1) / 3)
    assert mean["images"] == 3
    empty = np.full((4, 4), np.nan, dtype=np.float32)
    assert depth_metrics(gt, empty, crop=False) is None


def test_psnr_ssim_and_depth_error_on_small_arrays():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one value off by 255: MSE = 255^2 / 192
    assert psnr(a, b) == pytest.approx(10 * math.log10(192))
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, 255 - a) < 0.01
    gt = np.array([[1.0, 2.0], [np.nan, 4.0]], dtype=np.float32)
    err = depth_error(np.array([[1.0, 2.0], [9.0, 5.0]], dtype=np.float32), gt)
    assert err["rmse"] == pytest.approx(math.sqrt(1 / 3)) and err["abs_rel"] == pytest.approx(0.25 / 3)
    assert err["published"] == 1.0
    # a decoder that leaves out depth (NaN) is scored where it has depth, and the share is said
    err = depth_error(np.array([[1.0, np.nan], [9.0, 5.0]], dtype=np.float32), gt)
    assert err["rmse"] == pytest.approx(math.sqrt(1 / 2)) and err["published"] == pytest.approx(2 / 3)
    none = depth_error(np.full((2, 2), np.nan, dtype=np.float32), gt)
    assert none["published"] == 0.0 and math.isnan(none["rmse"])
    assert average([err, none])["rmse"] == pytest.approx(math.sqrt(1 / 2))  # its NaN does not spread
