"""mff_depth's mask head: one conv3x3 by default (the weights of earlier checkpoints), or
conv3x3-BN-ReLU layers of ``mask_head_widths`` before it."""

import pytest
import torch
from torch import nn

from rgbd_vae_ros.models import build_model

SMALL = {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1), "encoder_widths": (8, 16, 16, 16),
         "decoder_widths": (16, 16, 8, 8, 8), "mff_width": 4, "refine_width": 8}


def test_the_default_head_is_the_single_conv_of_earlier_checkpoints():
    model = build_model("mff_depth", SMALL)
    assert isinstance(model.mask_head, nn.Conv2d)
    assert {k for k in model.state_dict() if k.startswith("mask_head.")} == {"mask_head.weight", "mask_head.bias"}


def test_a_deeper_head_gives_the_mask_at_the_input_size_and_leaves_the_depth_network_alone():
    torch.manual_seed(0)
    plain = build_model("mff_depth", SMALL).eval()
    deeper = build_model("mff_depth", {**SMALL, "mask_head_widths": (12, 6)}).eval()
    shared = {k: v for k, v in plain.state_dict().items() if not k.startswith("mask_head.")}
    missing, unexpected = deeper.load_state_dict(shared, strict=False)
    assert not unexpected and missing and all(k.startswith("mask_head.") for k in missing)
    rgb = torch.rand(2, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        a, b = plain(rgb), deeper(rgb)
    assert b["mask"].shape == (2, 1, 48, 64) and torch.isfinite(b["mask"]).all()
    assert torch.equal(a["depth"], b["depth"])  # the head reads the features; it does not change them
    assert [m.out_channels for m in deeper.mask_head.modules() if isinstance(m, nn.Conv2d)] == [12, 6, 1]


def test_mask_head_widths_must_be_positive():
    with pytest.raises(ValueError, match="mask_head_widths must be positive widths"):
        build_model("mff_depth", {**SMALL, "mask_head_widths": (8, 0)})
