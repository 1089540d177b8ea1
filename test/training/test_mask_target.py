"""The mask target of MFFDepthLoss: "valid" (the truth has a reading) or "trusted" (the truth has a
reading and the prediction is within ``mask_error`` of it)."""

import pytest
import torch
from torch.nn import functional as F

from rgbd_vae_training.losses import MFFDepthLoss
from rgbd_vae_training.train.config import ConfigError, load_config


def _unit(depth01: list[float]) -> torch.Tensor:
    """(1, 1, 1, N) depth in the models' [-1, 1] from depth in [0, 1] (dyadic values, so exact)."""
    return torch.tensor(depth01).view(1, 1, 1, -1) * 2 - 1


# Truth 0.5 with mask_error 0.25: predictions 0.375 .. 0.625 are trusted (both ends included).
TRUTH = _unit([0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.5])
PRED = _unit([0.5, 0.625, 0.375, 0.6875, 0.3125, 0.25, 0.5])
VALID = torch.tensor([1, 1, 1, 1, 1, 1, 0], dtype=torch.bool).view(1, 1, 1, -1)
TRUSTED = torch.tensor([1, 1, 1, 0, 0, 1, 0], dtype=torch.float32).view(1, 1, 1, -1)  # the last: no reading


def test_trusted_target_is_valid_and_within_the_relative_error():
    loss = MFFDepthLoss(mask_target="trusted", mask_error=0.25)
    target = loss.mask_truth((PRED + 1) / 2, (TRUTH + 1) / 2, VALID.float())
    assert torch.equal(target, TRUSTED)


def test_mask_error_sets_the_bound():
    loss = MFFDepthLoss(mask_target="trusted", mask_error=0.5)  # 0.25 .. 0.75 trusted at truth 0.5
    target = loss.mask_truth((PRED + 1) / 2, (TRUTH + 1) / 2, VALID.float())
    assert torch.equal(target, torch.tensor([1, 1, 1, 1, 1, 1, 0], dtype=torch.float32).view(1, 1, 1, -1))


@pytest.mark.parametrize("mask_target, expected", [("valid", VALID.float()), ("trusted", TRUSTED)])
def test_mask_term_is_the_cross_entropy_against_the_target(mask_target, expected):
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 1.5]).view(1, 1, 1, -1)
    terms = MFFDepthLoss(mask_target=mask_target)(PRED, TRUTH, VALID, logits)
    torch.testing.assert_close(terms["mask"], F.binary_cross_entropy_with_logits(logits, expected))


def test_valid_is_the_default_target():
    assert MFFDepthLoss().mask_target == "valid"


def test_config_accepts_the_trusted_target_and_refuses_others():
    config = load_config("tiny_mff_depth", ["loss.mask_target=trusted", "loss.mask_error=0.1"])
    assert (config.loss.mask_target, config.loss.mask_error) == ("trusted", 0.1)
    with pytest.raises(ConfigError, match="mask_target 'truth' is not one of valid, trusted, laplace"):
        load_config("tiny_mff_depth", ["loss.mask_target=truth"])
    with pytest.raises(ConfigError, match="mask_error must be positive"):
        load_config("tiny_mff_depth", ["loss.mask_error=-0.25"])
