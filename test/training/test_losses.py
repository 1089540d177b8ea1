"""Losses: the ELBO terms, masking, beta warm-up, the depth loss terms, SSIM."""

import math

import pytest
import torch

from rgbd_vae_training.losses import DepthLoss, ELBOLoss, kl_divergence, ssim_map


def test_kl_is_zero_at_the_prior_and_matches_the_closed_form():
    assert kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5)).tolist() == [0.0, 0.0]
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[math.log(4.0), 0.0]])
    # 0.5 * sum(sigma^2 + mu^2 - 1 - log sigma^2) = 0.5 * ((4 + 1 - 1 - ln 4) + (1 + 4 - 1 - 0))
    expected = 0.5 * ((4 + 1 - 1 - math.log(4)) + 4)
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_elbo_sums_squared_error_per_sample_and_adds_beta_kl():
    target = torch.zeros(2, 4, 2, 2)
    out = {"recon": torch.full((2, 4, 2, 2), 0.5), "mu": torch.ones(2, 3), "logvar": torch.zeros(2, 3)}
    terms = ELBOLoss(beta=2.0)(out, target, None, step=0)
    assert terms["recon"].item() == pytest.approx(16 * 0.25)  # 16 values of 0.25 per sample
    assert terms["kl"].item() == pytest.approx(1.5)  # 0.5 * 3 * mu^2
    assert terms["loss"].item() == pytest.approx(4.0 + 2.0 * 1.5)


def test_elbo_ignores_invalid_depth_pixels_whatever_their_value():
    target = torch.zeros(1, 4, 2, 2)
    valid = torch.ones(1, 4, 2, 2, dtype=torch.bool)
    valid[0, 3, 0, 0] = False
    recon = torch.zeros(1, 4, 2, 2)
    out = {"recon": recon, "mu": torch.zeros(1, 2), "logvar": torch.zeros(1, 2)}
    recon[0, 3, 0, 0] = 0.9
    assert ELBOLoss()(out, target, valid, 0)["loss"].item() == 0.0
    recon[0, 3, 1, 1] = 0.5
    assert ELBOLoss()(out, target, valid, 0)["recon"].item() == pytest.approx(0.25)


def test_beta_warms_up_linearly():
    loss = ELBOLoss(beta=0.5, warmup_steps=100)
    assert [loss.beta_at(s) for s in (0, 50, 100, 1000)] == [0.0, 0.25, 0.5, 0.5]
    assert ELBOLoss(beta=0.5).beta_at(0) == 0.5


def test_depth_loss_is_zero_for_a_perfect_estimate_and_ignores_holes():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 16, 16) * 2 - 1
    valid = torch.rand(2, 1, 16, 16) > 0.2
    terms = DepthLoss()(target.clone(), target, valid)
    assert terms["loss"].item() == pytest.approx(0.0, abs=1e-6)
    wrong_in_holes = torch.where(valid, target, torch.ones_like(target))
    assert DepthLoss(w_gradient=0.0)(wrong_in_holes, target, valid)["l1"].item() == pytest.approx(0.0, abs=1e-7)


def test_depth_loss_terms_follow_their_weights():
    target = torch.zeros(1, 1, 8, 8)
    pred = torch.full((1, 1, 8, 8), 0.2)  # 0.1 off in the [0, 1] scale; flat, so no gradient error
    valid = torch.ones_like(target, dtype=torch.bool)
    terms = DepthLoss(w_l1=1.0, w_gradient=1.0, w_ssim=0.0)(pred, target, valid)
    assert terms["l1"].item() == pytest.approx(0.1, rel=1e-5)
    assert terms["gradient"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["loss"].item() == pytest.approx(0.1, rel=1e-5)
    ramp = torch.linspace(-1, 1, 8).expand(1, 1, 8, 8)
    assert DepthLoss()(ramp, target, valid)["gradient"].item() > 0


def test_the_log_depth_term_is_the_mean_absolute_log_ratio_over_valid_pixels():
    from rgbd_vae_training.losses import LOG_DEPTH_FLOOR

    def unit(share):  # a share of max depth as the [-1, 1] scale
        return torch.as_tensor(share, dtype=torch.float32) * 2 - 1

    target = unit(torch.full((1, 1, 4, 4), 0.2))
    pred = unit(torch.full((1, 1, 4, 4), 0.4))  # twice the true depth everywhere
    pred[0, 0, 0, 0] = unit(0.05)  # a quarter of it, in a hole: not counted
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[0, 0, 0, 0] = False
    loss = DepthLoss(w_l1=0.0, w_gradient=0.0, w_ssim=0.0, w_log_depth=2.0)
    terms = loss(pred, target, valid)
    assert terms["log_depth"].item() == pytest.approx(math.log(2), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(2 * math.log(2), rel=1e-5)
    # an error weighs by its share of the true depth: 1 m too far at 1 m is as bad as 5 m too far at 5 m
    near = loss(unit(torch.full((1, 1, 4, 4), 0.2)), unit(torch.full((1, 1, 4, 4), 0.1)), valid)["log_depth"]
    far = loss(unit(torch.full((1, 1, 4, 4), 1.0)), unit(torch.full((1, 1, 4, 4), 0.5)), valid)["log_depth"]
    assert near.item() == pytest.approx(far.item(), rel=1e-5)
    # 0 m (the output's floor, and a hole's target value) is floored, never log 0
    zero = loss(unit(torch.zeros(1, 1, 4, 4)), target, torch.ones_like(valid))
    assert zero["log_depth"].item() == pytest.approx(math.log(0.2 / LOG_DEPTH_FLOOR), rel=1e-5)
    assert "log_depth" not in DepthLoss()(pred, target, valid)  # off by default: the other configs unchanged


def test_ssim_is_one_for_equal_images_and_the_formula_for_flat_ones():
    x = torch.rand(1, 3, 20, 20)
    assert ssim_map(x, x).mean().item() == pytest.approx(1.0, abs=1e-5)
    a, b = 0.2, 0.6  # flat images: variances 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01 ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim_map(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b))
    assert got.mean().item() == pytest.approx(expected, rel=1e-4)


# mff_depth's losses (Hu et al.): depth, gradient, surface normal, mask BCE


def _unit(depth01: torch.Tensor) -> torch.Tensor:
    """Depth in [0, 1] (fraction of the maximum) as the models output it, in [-1, 1]."""
    return depth01 * 2 - 1


def _plane(slope_per_width: float, height: int = 6, width: int = 8, offset: float = 0.4) -> torch.Tensor:
    x = torch.arange(width, dtype=torch.float32) / width
    return (offset + slope_per_width * x).expand(1, 1, height, width).clone()


def test_mff_depth_terms_are_zero_for_identical_depth_and_the_normal_term_knows_a_tilt():
    from rgbd_vae_training.losses import MFFDepthLoss

    flat, tilted = _plane(0.0), _plane(0.3)
    valid = torch.ones_like(flat, dtype=torch.bool)
    same = MFFDepthLoss()(_unit(tilted), _unit(tilted), valid)
    for name in ("depth", "gradient", "normal", "loss"):
        assert same[name].item() == pytest.approx(0.0, abs=1e-6), name
    # a plane rising 0.3 per image width against a flat one: normals (-0.3, 0, 1)/|.| and (0, 0, 1)
    terms = MFFDepthLoss()(_unit(tilted), _unit(flat), valid)
    assert terms["normal"].item() == pytest.approx(1 - 1 / math.sqrt(1 + 0.3 ** 2), rel=1e-4)
    # the same tilt at twice the resolution is the same surface: the same normal term
    fine = MFFDepthLoss()(_unit(_plane(0.3, 12, 16)), _unit(_plane(0.0, 12, 16)), torch.ones(1, 1, 12, 16, dtype=torch.bool))
    assert fine["normal"].item() == pytest.approx(terms["normal"].item(), rel=1e-4)
    # gradient: x differences err by 0.3 / 8 everywhere, y differences not at all
    assert terms["gradient"].item() == pytest.approx(0.3 / 8, rel=1e-4)
    # depth: mean |0.3 x| over x = 0, 1/8, ..., 7/8
    assert terms["depth"].item() == pytest.approx(0.3 * 3.5 / 8, rel=1e-4)


def test_mff_depth_log_l1_is_hu_et_al_log_of_the_error_moved_to_zero():
    from rgbd_vae_training.losses import MFFDepthLoss

    target = torch.full((1, 1, 4, 4), 0.5)
    pred = target + 0.1
    valid = torch.ones_like(target, dtype=torch.bool)
    terms = MFFDepthLoss(depth_term="log_l1", log_alpha=0.05)(_unit(pred), _unit(target), valid)
    assert terms["depth"].item() == pytest.approx(math.log(0.1 + 0.05) - math.log(0.05), rel=1e-4)
    assert terms["gradient"].item() == pytest.approx(0.0, abs=1e-6)  # a constant offset has no gradient error


def test_mff_depth_terms_ignore_invalid_pixels_whatever_their_value():
    from rgbd_vae_training.losses import MFFDepthLoss

    target = _plane(0.2)
    pred = target.clone()
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[0, 0, 2:4, 3:5] = False
    pred[0, 0, 2:4, 3:5] = 0.95  # wild values where the truth is a hole
    terms = MFFDepthLoss()(_unit(pred), _unit(target), valid)
    for name in ("depth", "gradient", "normal"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-6), name
    pred[0, 0, 0, 0] = 0.95  # a wrong valid pixel counts
    assert MFFDepthLoss()(_unit(pred), _unit(target), valid)["depth"].item() > 0.01


def test_mask_bce_against_the_truth_validity_and_the_weights():
    from rgbd_vae_training.losses import MFFDepthLoss

    target = torch.full((1, 1, 2, 2), 0.5)
    valid = torch.tensor([[[[True, True], [True, False]]]])
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, -3.0]]]])
    expected = -(math.log(0.5) + math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(1)))
                 + math.log(1 - 1 / (1 + math.exp(3)))) / 4
    loss = MFFDepthLoss(w_depth=1.0, w_gradient=1.0, w_normal=1.0, w_mask=2.0)
    terms = loss(_unit(target + 0.1), _unit(target), valid, logits)
    assert terms["mask"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(terms["depth"].item() + terms["gradient"].item()
                                                 + terms["normal"].item() + 2.0 * expected, rel=1e-5)
    assert "mask" not in loss(_unit(target), _unit(target), valid)  # no mask output: no mask term
    with pytest.raises(ValueError, match="depth_term 'l2' is not one of l1, log_l1"):
        MFFDepthLoss(depth_term="l2")
