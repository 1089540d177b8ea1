"""The "laplace" mask target of MFFDepthLoss: the mask probability sigmoid(z) is read as the chance
that the relative depth error is within mask_error under a Laplace distribution of the log error,
and valid pixels pay that distribution's negative log-likelihood of their error."""

import math

import pytest
import torch
from torch.nn import functional as F

from rgbd_vae_training.losses import MFFDepthLoss
from rgbd_vae_training.train.config import load_config


def _unit(depth01: torch.Tensor) -> torch.Tensor:
    """Depth in [0, 1] to the models' [-1, 1], shaped (1, 1, 1, N)."""
    return depth01.reshape(1, 1, 1, -1) * 2 - 1


def test_laplace_mask_term_is_the_nll_of_the_log_error_on_valid_pixels_and_bce_to_zero_elsewhere():
    truth = torch.tensor([0.5, 0.5, 0.2, 0.4])
    pred = torch.tensor([0.5, 0.6, 0.1, 0.9])
    valid = torch.tensor([True, True, True, False]).view(1, 1, 1, -1)
    logits = torch.tensor([3.0, -0.5, 1.0, 2.0]).view(1, 1, 1, -1)
    terms = MFFDepthLoss(mask_target="laplace", mask_error=0.25)(_unit(pred), _unit(truth), valid, logits)
    a = math.log(1.25)
    expected = []
    for p, t, v, z in zip(pred.tolist(), truth.tolist(), valid.flatten().tolist(), logits.flatten().tolist()):
        s = math.log1p(math.exp(z))  # softplus
        expected.append(abs(math.log(p / t)) * s / a - math.log(s) if v else s)
    assert terms["mask"].item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_the_mask_that_minimises_the_laplace_term_is_the_share_of_pixels_within_the_error():
    # log errors drawn from a Laplace of scale b: the best single mask value is P(|r| <= a) = 1 - exp(-a / b)
    torch.manual_seed(0)
    b, n = 0.3, 4000
    log_error = torch.distributions.Laplace(0.0, b).sample((n,))
    truth = torch.full((n,), 0.3)
    pred = (truth * log_error.exp()).clamp(max=1.0)
    keep = pred < 1.0  # no clipped predictions, so the errors stay Laplace
    truth, pred, log_error = truth[keep], pred[keep], log_error[keep]
    valid = torch.ones(1, 1, 1, len(truth), dtype=torch.bool)
    loss = MFFDepthLoss(mask_target="laplace", mask_error=0.25)
    a = math.log(1.25)
    # the claimed minimiser: softplus(z) = a / mean |r|, i.e. sigmoid(z) = 1 - exp(-a / mean |r|)
    best = math.log(math.expm1(a / log_error.abs().mean().item()))

    def term(z: float) -> torch.Tensor:
        logit = torch.tensor(z, requires_grad=True)
        value = loss(_unit(pred), _unit(truth), valid, logit.expand(1, 1, 1, len(truth)))["mask"]
        value.backward()
        return value.item(), logit.grad.item()

    at_best, slope = term(best)
    assert abs(slope) < 1e-3
    assert term(best - 0.2)[0] > at_best < term(best + 0.2)[0]
    within = (log_error.abs() <= a).float().mean().item()
    assert 1 / (1 + math.exp(-best)) == pytest.approx(within, abs=0.03)


def test_larger_errors_want_a_lower_mask():
    truth = torch.full((2,), 0.4)
    pred = torch.tensor([0.42, 0.7])  # 5 % and 75 % off
    valid = torch.ones(1, 1, 1, 2, dtype=torch.bool)
    z = torch.zeros(1, 1, 1, 2, requires_grad=True)
    MFFDepthLoss(mask_target="laplace")(_unit(pred), _unit(truth), valid, z)["mask"].backward()
    assert z.grad[0, 0, 0, 0] < 0 < z.grad[0, 0, 0, 1]  # descent raises the first, lowers the second


def test_laplace_term_is_finite_at_extreme_logits_and_zero_depth_and_leaves_the_depth_alone():
    truth = torch.tensor([0.5, 0.5, 0.3, 0.3])
    pred = torch.tensor([0.0, 0.5, 0.3, 1.0], requires_grad=True)
    valid = torch.tensor([True, True, True, False]).view(1, 1, 1, -1)
    logits = torch.tensor([-100.0, 100.0, -30.0, 100.0], requires_grad=True)
    terms = MFFDepthLoss(mask_target="laplace", w_depth=0, w_gradient=0, w_normal=0)(
        _unit(pred), _unit(truth), valid, logits.view(1, 1, 1, -1))
    terms["loss"].backward()
    assert math.isfinite(terms["mask"].item())
    assert torch.isfinite(logits.grad).all()
    assert pred.grad is None or not pred.grad.any()  # the error is detached: no gradient into the depth


def test_laplace_agrees_with_bce_where_every_pixel_has_no_reading():
    truth, pred = torch.full((3,), 0.5), torch.full((3,), 0.2)
    valid = torch.zeros(1, 1, 1, 3, dtype=torch.bool)
    logits = torch.tensor([-2.0, 0.0, 4.0]).view(1, 1, 1, -1)
    laplace = MFFDepthLoss(mask_target="laplace")(_unit(pred), _unit(truth), valid, logits)["mask"]
    bce = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    assert laplace.item() == pytest.approx(bce.item(), rel=1e-6)


def test_config_accepts_the_laplace_target():
    config = load_config("tiny_mff_depth", ["loss.mask_target=laplace"])
    assert config.loss.mask_target == "laplace"
