"""The mask's trade-off curve (good pixels kept against bad pixels removed at every threshold), the
threshold chosen on validation frames, and ``python -m rgbd_vae_training.mask_eval``, which reports
issue 19's must-show with that threshold on the test frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rgbd_vae_training.mask_eval import CURVE_EDGES, MaskTally, curve_at, main, operating_threshold


def _frames(seed: int = 0, count: int = 3, shape=(24, 32)):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        gt = rng.uniform(0.5, 6.0, shape).astype(np.float32)
        gt[rng.random(shape) < 0.2] = np.nan  # holes
        gt[0, :4] = 0.0  # "no reading" as 0
        pred = (gt * rng.uniform(0.5, 1.6, shape)).astype(np.float32)
        pred[np.isnan(pred)] = rng.uniform(0.5, 6.0, int(np.isnan(pred).sum()))
        pred[1, :3] = np.nan  # not published
        mask = rng.random(shape).astype(np.float32)
        mask[2, :5] = [0.0, 1.0, 0.5, 0.9999999, np.nan]
        yield pred, mask, gt


@pytest.mark.parametrize("threshold", [0.0, 0.001, 0.25, 0.5, 0.737, 0.9, 0.99, 1.0 - 1e-7, 1.0])
def test_the_curve_at_a_threshold_is_the_tally_at_that_threshold(threshold):
    assert threshold in CURVE_EDGES
    curved, single = MaskTally(), MaskTally(threshold)
    for pred, mask, gt in _frames():
        curved.add(pred, mask, gt)
        single.add(pred, mask, gt)
    row, exact = curve_at(curved.curve(), float(threshold)), single.result()
    for key in ("good_kept_by_mask", "bad_removed_by_mask", "bad_share_with_mask", "mask_iou",
                "unchecked_share_with_mask"):
        assert row[key] == pytest.approx(exact[key], abs=1e-6), key


def test_the_curve_trades_good_pixels_kept_for_bad_pixels_removed():
    tally = MaskTally()
    for pred, mask, gt in _frames(1):
        tally.add(pred, np.nan_to_num(mask), gt)
    curve = tally.curve()
    kept, removed = np.array(curve["good_kept_by_mask"]), np.array(curve["bad_removed_by_mask"])
    assert kept[0] == 1.0 and removed[0] == 0.0  # threshold 0 trusts every finite mask
    assert np.all(np.diff(kept) <= 0) and np.all(np.diff(removed) >= 0)
    assert kept[-1] < 0.01 and removed[-1] > 0.99


def test_the_operating_threshold_is_the_largest_that_keeps_the_share_of_good_pixels():
    curve = {"threshold": [0.0, 0.3, 0.5, 0.7, 0.9], "good_kept_by_mask": [1.0, 0.97, 0.9, 0.89, 0.5]}
    assert operating_threshold(curve, 0.9) == 0.5
    assert operating_threshold(curve, 0.95) == 0.3
    assert operating_threshold(curve, 0.5) == 0.9
    with pytest.raises(ValueError, match="expected one in"):
        operating_threshold(curve, 1.5)
    with pytest.raises(ValueError, match="no threshold keeps 90%"):
        operating_threshold({"threshold": [0.0], "good_kept_by_mask": [float("nan")]}, 0.9)


def test_choosing_the_threshold_on_the_test_frames_is_refused(tmp_path, capsys):
    data = tmp_path / "frames"
    data.mkdir()
    code = main(["--checkpoint", str(tmp_path / "none.pt"), "--data", str(data), "--validation", str(data),
                 "--out", str(tmp_path / "out")])
    assert code == 1 and "the threshold would be chosen on the frames it is scored on" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", "x.pt", "--data", "a", "--validation", "b", "--out", "o", "--good-kept", "1.5"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_must_show_chooses_on_validation_frames_and_scores_the_test_frames_at_that_threshold(tmp_path, nyu_raw_dir,
                                                                                            capsys):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    torch.manual_seed(0)
    model = build_model("mff_depth", {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1),
                                      "encoder_widths": (8, 16, 16, 16), "decoder_widths": (16, 16, 8, 8, 8),
                                      "mff_width": 4, "refine_width": 8}).eval()
    with torch.no_grad():  # a mask that varies over the image, and 2.5 m of depth everywhere
        model.mask_head.weight.mul_(20.0)
        model.depth_head.weight.zero_()
        model.depth_head.bias.fill_(float(np.arctanh(2 * 2.5 / 10.0 - 1)))
    path = tmp_path / "mff.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": 10.0}}), path)
    out = tmp_path / "must_show"
    assert main(["--checkpoint", str(path), "--data", str(nyu_raw_dir), "--validation", str(nyu_raw_dir),
                 "--validation-split", "train", "--out", str(out)]) == 0
    assert "chosen on" in capsys.readouterr().out
    report = json.loads((out / "mask_report.json").read_text())
    validation = json.loads((out / "validation" / "metrics.json").read_text())["mask"]
    test = json.loads((out / "test" / "metrics.json").read_text())["mask"]
    threshold = report["validation"]["threshold"]
    assert threshold == operating_threshold(validation["curve"], 0.9) and 0 < threshold < 1
    assert report["validation"]["at_threshold"]["good_kept_by_mask"] >= 0.9
    assert validation["pixels"] != test["pixels"]  # the training rooms, then the test rooms
    assert test["threshold"] == threshold  # the test frames scored at the chosen threshold
    for key in ("good_kept_by_mask", "bad_removed_by_mask", "mask_iou"):
        assert report["test"]["at_threshold"][key] == pytest.approx(test[key], abs=1e-6)
    assert report["test"]["without_mask"]["bad_share"] == test["bad_share_without_mask"]


def test_frame_scale_and_the_frame_oracle_show_how_much_error_is_one_scale_per_frame():
    gt = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    mask = np.ones_like(gt)
    tally = MaskTally()
    tally.add(gt * 2.0, mask, gt)  # a frame twice too far: all bad, all good once rescaled
    tally.add(gt * np.array([[1.0, 1.0, 1.0, 1.5]], dtype=np.float32), mask, gt)  # 3 good, 1 bad of its own
    for _ in range(3):
        tally.add(gt.copy(), mask, gt)  # perfect frames: 12 good
    r = tally.result()
    assert r["bad_share_without_mask"] == pytest.approx(5 / 20)
    assert r["bad_share_after_frame_scale"] == pytest.approx(1 / 20)  # the second frame's median is 1
    # dropping the all-bad frame costs no good pixel; dropping the second would leave 12 / 15 < 90 %
    assert r["frame_oracle_bad_removed"] == pytest.approx(4 / 5)
    assert np.isnan(MaskTally().result()["frame_oracle_bad_removed"])  # no bad pixels: nothing to remove


def test_the_report_of_frames_without_a_bad_pixel_prints_dashes_not_a_format_error():
    """A perfect model: no bad pixel, so the frame oracle is a share of nothing (NaN, null in the
    report's JSON) and the table shows '-' there."""
    from rgbd_vae_training.evaluate import _finite_or_null
    from rgbd_vae_training.mask_eval import report_text

    gt = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    tally = MaskTally()
    tally.add(gt.copy(), np.ones_like(gt), gt)
    mask = _finite_or_null(tally.result())
    at_05 = curve_at(mask["curve"], 0.5)
    report = {"model": "mff_depth", "good_kept_target": 0.9,
              "validation": {"data": "val", "split": "all", "images": 1, "threshold": 0.5, "at_threshold": at_05},
              "test": {"data": "test", "images": 1, "depth": {"abs_rel": 0.0, "delta1": 1.0},
                       "mean_depth_baseline": {"abs_rel": 0.4, "delta1": 0.3},
                       "without_mask": {"bad_share": mask["bad_share_without_mask"],
                                        "unchecked_share": mask["unchecked_share_without_mask"]},
                       "at_threshold": at_05, "at_0.5": at_05,
                       "bad_share_after_frame_scale": mask["bad_share_after_frame_scale"],
                       "frame_oracle_bad_removed": mask["frame_oracle_bad_removed"], "curve": mask["curve"]}}
    assert report["test"]["frame_oracle_bad_removed"] is None
    text = report_text(report)
    assert "dropping whole frames (oracle) removes - of the bad pixels" in text
    assert "bad share 0.000 -> 0.000" in text
