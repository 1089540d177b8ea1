"""``rgbd-vae eval depth`` of a model with a validity mask: mask IoU against the truth's validity,
the share of published pixels with an error over 25 % with and without the mask, and the share
of good pixels the mask keeps, in the table, the JSON and the figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from PIL import Image

from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.mask_eval import MaskTally


def test_the_tally_counts_what_the_mask_keeps_and_removes():
    gt = np.array([[1.0, 1.0, 2.0, np.nan],
                   [2.0, 4.0, 0.0, 5.0]], dtype=np.float32)
    pred = np.array([[1.1, 2.0, 2.0, 3.0],     # good, bad (100 %), good, no truth
                     [2.6, 4.0, 1.0, np.nan]], dtype=np.float32)  # bad (30 %), good, no truth, not published
    mask = np.array([[0.9, 0.2, 0.6, 0.1],
                     [0.4, 0.7, 0.8, 0.9]], dtype=np.float32)
    tally = MaskTally(0.5)
    tally.add(pred, mask, gt)
    r = tally.result()
    # valid truth: 6 pixels; trusted: (0,0) (0,2) (1,1) (1,2) (1,3); both: (0,0) (0,2) (1,1) (1,3)
    assert r["mask_iou"] == pytest.approx(4 / 7)
    assert r["bad_share_without_mask"] == pytest.approx(2 / 5)  # 5 published with truth, 2 bad
    assert r["bad_share_with_mask"] == pytest.approx(0 / 3)
    assert r["good_kept_by_mask"] == pytest.approx(3 / 3) and r["bad_removed_by_mask"] == pytest.approx(1.0)
    assert r["unchecked_share_without_mask"] == pytest.approx(2 / 7)  # 7 published, 2 without truth
    assert r["unchecked_share_with_mask"] == pytest.approx(1 / 4)
    assert r["holes_flagged_by_mask"] == pytest.approx(1 / 2)  # no truth at (0,3) (flagged) and (1,2) (not)
    # a stricter threshold keeps fewer good pixels
    strict = MaskTally(0.75)
    strict.add(pred, mask, gt)
    assert strict.result()["good_kept_by_mask"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="not a probability"):
        MaskTally(1.5)


def _mask_checkpoint(tmp_path, small_mff_config, bias: float):
    """A small mff_depth whose mask head says ``sigmoid(bias)`` everywhere, and whose depth is 2.5 m
    everywhere (some pixels of the synthetic rooms are within 25 % of it, others not)."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    torch.manual_seed(0)
    model = build_model("mff_depth", small_mff_config).eval()
    with torch.no_grad():
        model.mask_head.weight.zero_()
        model.mask_head.bias.fill_(bias)
        model.depth_head.weight.zero_()
        model.depth_head.bias.fill_(float(np.arctanh(2 * 2.5 / 10.0 - 1)))  # tanh -> 2.5 m of 10
    path = tmp_path / f"mff_{bias:+g}.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": 10.0}}), path)
    return path


SMALL_MFF = {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1), "encoder_widths": (8, 16, 16, 16),
             "decoder_widths": (16, 16, 8, 8, 8), "mff_width": 4, "refine_width": 8}


@pytest.mark.slow
def test_eval_depth_reports_the_mask_in_table_json_and_figure(tmp_path, nyu_raw_dir, capsys):
    trusting = _mask_checkpoint(tmp_path, SMALL_MFF, 10.0)  # trusts every pixel: nothing changes
    assert cli(["eval", "depth", "--checkpoint", str(trusting), "--data", str(nyu_raw_dir), "--out",
                str(tmp_path / "all")]) == 0
    table = capsys.readouterr().out
    assert "mask IoU vs true validity" in table and "good px (error <= 25 %) kept by mask" in table
    result = json.loads((tmp_path / "all" / "metrics.json").read_text())["mask"]
    assert result["threshold"] == 0.5 and result["trusted_share"] == 1.0
    assert result["mask_iou"] == pytest.approx(result["true_valid_share"])  # trusted everywhere
    assert 0 < result["true_valid_share"] < 1  # the synthetic raw frames have holes
    assert result["bad_share_with_mask"] == pytest.approx(result["bad_share_without_mask"])
    assert result["good_kept_by_mask"] == 1.0 and result["unchecked_share_without_mask"] > 0
    assert 0 < result["bad_share_without_mask"] < 1
    figure = read_png(tmp_path / "all" / "figure.png")
    assert figure.shape[1] > read_png_width_of_three_columns(tmp_path, nyu_raw_dir)

    doubting = _mask_checkpoint(tmp_path, SMALL_MFF, -10.0)  # trusts nothing: every pixel masked
    assert cli(["eval", "depth", "--checkpoint", str(doubting), "--data", str(nyu_raw_dir), "--out",
                str(tmp_path / "none"), "--mask-threshold", "0.3"]) == 0
    result = json.loads((tmp_path / "none" / "metrics.json").read_text())["mask"]
    assert result["threshold"] == 0.3 and result["trusted_share"] == 0.0 and result["mask_iou"] == 0.0
    assert result["good_kept_by_mask"] == 0.0 and result["bad_share_with_mask"] is None  # nothing left: no share
    assert result["holes_flagged_by_mask"] == 1.0 and result["interior_holes_flagged_by_mask"] in (1.0, None)


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def read_png_width_of_three_columns(tmp_path, data):
    """The figure width of a depth model without a mask (three columns) on the same data."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    torch.manual_seed(0)
    model = build_model("fast_depth", {"input_height": 32, "input_width": 64, "width_multiplier": 0.35,
                                       "final_width": 8}).eval()
    path = tmp_path / "fast.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": 10.0}}), path)
    assert cli(["eval", "depth", "--checkpoint", str(path), "--data", str(data), "--out", str(tmp_path / "plain")]) == 0
    assert "mask" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())
    return read_png(tmp_path / "plain" / "figure.png").shape[1]


def test_a_mask_threshold_for_a_model_without_a_mask_is_refused(tmp_path, nyu_raw_dir, capsys):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    model = build_model("fast_depth", {"input_height": 32, "input_width": 64, "width_multiplier": 0.35,
                                       "final_width": 8}).eval()
    path = tmp_path / "fast.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": 10.0}}), path)
    code = cli(["eval", "depth", "--checkpoint", str(path), "--data", str(nyu_raw_dir), "--mask-threshold", "0.5"])
    assert code != 0 and "--mask-threshold is for models with a validity mask" in capsys.readouterr().err
