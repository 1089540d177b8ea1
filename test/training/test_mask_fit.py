"""``python -m rgbd_vae_training.mask_fit``: only the mask head of a trained mff_depth learns, on
other frames, where its frozen depth is wrong; the depth stays exactly as it was."""

from __future__ import annotations

import pytest
import torch

from rgbd_vae_ros.models import build_model, load_checkpoint, model_from_checkpoint
from rgbd_vae_ros.models.checkpoint import checkpoint_payload
from rgbd_vae_training.mask_fit import main

SMALL = {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1), "encoder_widths": (8, 16, 16, 16),
         "decoder_widths": (16, 16, 8, 8, 8), "mff_width": 4, "refine_width": 8}


def _checkpoint(tmp_path, **config):
    torch.manual_seed(0)
    model = build_model("mff_depth", {**SMALL, **config}).eval()
    path = tmp_path / "trained.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": 10.0}, "loss": {"mask_target": "valid"}},
                                  step=7), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("target, widths", [("trusted", ""), ("laplace", "8")])
def test_only_the_mask_head_changes(tmp_path, nyu_raw_dir, target, widths, capsys):
    source = _checkpoint(tmp_path)
    out = tmp_path / "fitted.pt"
    args = ["--checkpoint", str(source), "--data", str(nyu_raw_dir), "--split", "all", "--out", str(out),
            "--mask-target", target, "--steps", "20", "--batch-size", "4", "--lr", "0.01"]
    assert main(args + (["--head-widths", widths] if widths else [])) == 0
    assert "fitted the mask head on" in capsys.readouterr().out
    before, after = model_from_checkpoint(source), model_from_checkpoint(out)
    assert after.config.mask_head_widths == (tuple(int(w) for w in widths.split(",")) if widths else ())
    old, new = before.state_dict(), after.state_dict()
    for key, value in new.items():
        if not key.startswith("mask_head."):
            assert torch.equal(value, old[key]), key  # batch-norm statistics included
    rgb = torch.rand(1, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        a, b = before(rgb), after(rgb)
    assert torch.equal(a["depth"], b["depth"]) and not torch.allclose(a["mask"], b["mask"])
    payload = load_checkpoint(out)
    assert payload["mask_fit"]["mask_target"] == target and payload["mask_fit"]["frames"] > 0
    assert payload["config"]["loss"]["mask_target"] == target and payload["step"] == 7


def test_a_two_stage_model_or_an_unknown_target_is_refused(tmp_path, capsys):
    source = _checkpoint(tmp_path, mask_mode="two_stage", mask_widths=(4, 8))
    code = main(["--checkpoint", str(source), "--data", str(tmp_path), "--out", str(tmp_path / "x.pt")])
    assert code == 1 and "mask_mode 'head'; the checkpoint holds 'mff_depth' with mask_mode 'two_stage'" in \
        capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(source), "--data", str(tmp_path), "--out", "x.pt", "--mask-target", "valid"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(source), "--data", str(tmp_path), "--out", "x.pt", "--head-widths", "8,a"])
    assert exit_info.value.code == 2
