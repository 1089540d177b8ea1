"""ELBOLoss's depth weight, free bits and decoded validity: what each changes in the loss, and what it
leaves alone."""

import math

import pytest
import torch

from rgbd_vae_training.losses import ELBOLoss, validity_cross_entropy


def _out(recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor | None = None) -> dict:
    return {"recon": recon, "mu": mu, "logvar": torch.zeros_like(mu) if logvar is None else logvar}


def test_depth_weight_scales_the_depth_channel_error_and_reports_both_parts():
    target = torch.zeros(2, 4, 2, 2)
    recon = torch.zeros(2, 4, 2, 2)
    recon[:, :3] = 0.5  # 12 RGB values of 0.25 per sample
    recon[:, 3] = 0.1  # 4 depth values of 0.01 per sample
    out = _out(recon, torch.zeros(2, 3))
    plain, weighted = ELBOLoss(beta=0.0)(out, target, None, 0), ELBOLoss(beta=0.0, depth_weight=5.0)(out, target, None, 0)
    assert plain["recon_rgb"].item() == pytest.approx(3.0) and plain["recon_depth"].item() == pytest.approx(0.04)
    assert plain["recon"].item() == pytest.approx(3.04)
    assert weighted["recon"].item() == pytest.approx(3.0 + 5.0 * 0.04)
    assert weighted["loss"].item() == pytest.approx(3.2)


def test_the_decoded_validity_channel_is_scored_against_where_the_depth_had_readings():
    target = torch.zeros(1, 4, 2, 2)
    valid = torch.ones(1, 4, 2, 2, dtype=torch.bool)
    valid[0, 3, 0] = False  # the top row has no depth reading
    logits = torch.zeros(1, 5, 2, 2)
    logits[0, 4] = torch.tensor([[-3.0, -3.0], [3.0, 3.0]])  # decoded validity: none on top, readings below

    def scored(logits):
        out = {**_out(torch.tanh(logits), torch.zeros(1, 2)), "recon_logits": logits}
        return ELBOLoss(beta=0.0, validity_weight=2.0)(out, target, valid, 0)

    right = scored(logits)  # each pixel: -log sigmoid(2 * 3)
    assert right["recon_validity"].item() == pytest.approx(4 * math.log1p(math.exp(-6.0)), rel=1e-4)
    wrong = scored(-logits)  # every pixel wrong: -log sigmoid(-6)
    assert wrong["recon_validity"].item() == pytest.approx(4 * math.log1p(math.exp(6.0)), rel=1e-5)
    assert wrong["recon"].item() == pytest.approx(2.0 * wrong["recon_validity"].item())  # RGB and depth exact
    # undecided (0: probability one half) costs log 2 a pixel, whatever the truth
    assert validity_cross_entropy(torch.zeros(3), torch.tensor([True, False, True])).tolist() == pytest.approx(
        [math.log(2)] * 3)
    # outputs without the values before the tanh: refused, not scored where the gradient would vanish
    with pytest.raises(ValueError, match="must return 'recon_logits'"):
        ELBOLoss(beta=0.0, validity_weight=2.0)(_out(torch.tanh(logits), torch.zeros(1, 2)), target, valid, 0)
    with pytest.raises(ValueError, match="validity_weight must be positive"):
        ELBOLoss(validity_weight=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16-autocast"])
def test_a_confidently_wrong_validity_keeps_its_gradient_where_the_tanh_has_saturated(dtype):
    """The decoder says "a reading here" far beyond where tanh rounds to 1 (float32: |x| > 9; bfloat16,
    as CUDA's autocast computes it: |x| > 3) over a frame with no reading. Scored from tanh's value,
    the gradient would be 0 and the pixel would never be corrected; from the value before it, it is
    2 sigmoid(2x) ≈ 2 per pixel, times the weight."""
    from rgbd_vae_ros.models import build_model

    from rgbd_vae_training.train.config import load_config

    config = load_config("tiny_vae")
    torch.manual_seed(0)
    model = build_model(config.model_name, config.model).train()
    last = model.decoder.layers[-1]  # the conv that makes the 5 channels, before the tanh
    x = torch.zeros(2, 4, 64, 64)
    valid = torch.ones(2, 4, 64, 64, dtype=torch.bool)
    valid[:, 3] = False  # no depth reading anywhere
    with torch.no_grad():
        last.bias[4] = 20.0 if dtype == torch.float32 else 10.0
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = model(x)
        assert out["recon"][:, 4].float().min().item() == 1.0  # saturated: tanh says "certainly a reading"
        terms = ELBOLoss(beta=0.0, validity_weight=0.1)(out, x, valid, 0)
    terms["recon_validity"].backward()
    pixels = 64 * 64
    assert last.bias.grad[4].item() == pytest.approx(2 * pixels, rel=0.02)  # per sample: 2 per pixel


def test_depth_weight_leaves_rgb_only_models_and_masked_depth_alone():
    rgb_target, rgb_recon = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    out = _out(rgb_recon, torch.zeros(1, 2))
    assert ELBOLoss(depth_weight=10.0)(out, rgb_target, None, 0)["recon"].item() == pytest.approx(3.0)
    target, recon = torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    recon[0, 3] = 0.9  # wrong depth, but no pixel of it is valid
    valid = torch.ones(1, 4, 2, 2, dtype=torch.bool)
    valid[0, 3] = False
    assert ELBOLoss(depth_weight=10.0)(_out(recon, torch.zeros(1, 2)), target, valid, 0)["loss"].item() == 0.0


def test_free_bits_floor_each_dimension_so_small_ones_are_not_pushed_to_the_prior():
    # dimension 0 carries 0.5 * 2^2 = 2 nats, dimension 1 0.5 * 0.1^2 = 0.005 nats
    mu = torch.tensor([[2.0, 0.1]], requires_grad=True)
    out = _out(torch.zeros(1, 3, 2, 2), mu)
    target = torch.zeros(1, 3, 2, 2)
    terms = ELBOLoss(beta=1.0, free_bits=0.5)(out, target, None, 0)
    assert terms["kl"].item() == pytest.approx(2.005)  # the KL reported is the true one
    assert terms["loss"].item() == pytest.approx(2.0 + 0.5)  # the small dimension counts as the floor
    terms["loss"].backward()
    assert mu.grad[0, 0].item() == pytest.approx(2.0) and mu.grad[0, 1].item() == 0.0
    plain = ELBOLoss(beta=1.0)(_out(torch.zeros(1, 3, 2, 2), torch.tensor([[2.0, 0.1]])), target, None, 0)
    assert plain["loss"].item() == pytest.approx(2.005)


@pytest.mark.parametrize("settings, message", [({"depth_weight": 0.0}, "depth_weight must be positive"),
                                               ({"depth_weight": -1.0}, "depth_weight must be positive"),
                                               ({"free_bits": -0.1}, "free_bits 0 or more"),
                                               ({"depth_weight": math.nan}, "depth_weight must be positive")])
def test_bad_depth_weight_or_free_bits_is_refused_with_the_values(settings, message):
    with pytest.raises(ValueError, match=message):
        ELBOLoss(**settings)


def _tiny_conv_vae():
    from rgbd_vae_ros.models import build_model, config_from_dict

    torch.manual_seed(0)
    return build_model("conv_vae", config_from_dict("conv_vae", {"image_size": 16, "latent_dim": 6,
                                                                 "widths": [4, 8]}))


def test_quantiser_noise_is_within_half_a_step_of_the_batch_estimated_quantiser():
    from rgbd_vae_ros.models.base import QUANTISER_RANGE_STD, quantiser_noise

    torch.manual_seed(0)
    mu = torch.randn(64, 3) * torch.tensor([0.5, 1.0, 4.0])
    noise = quantiser_noise(mu, 4)
    step = QUANTISER_RANGE_STD * mu.std(dim=0) / 16
    assert (noise.abs() <= step / 2).all() and (noise.abs().amax(dim=0) > step / 4).all()  # spans the step
    assert (quantiser_noise(mu, 8).abs().amax(dim=0) <= step / 32).all()  # 16x finer at 8 bits


def test_a_vae_adds_quantiser_noise_to_its_code_only_while_training():
    model = _tiny_conv_vae()
    x = torch.rand(4, 4, 16, 16) * 2 - 1
    model.eval()
    plain = model(x)["recon"]
    model.train_quantiser_bits = 2
    assert torch.equal(model(x)["recon"], plain)  # eval: mu decoded as it is, deterministic
    model.train()
    torch.manual_seed(1)
    sampled = model(x)
    model.train_quantiser_bits = 0
    torch.manual_seed(1)
    without = model(x)
    assert torch.equal(sampled["mu"], without["mu"]) and not torch.allclose(sampled["recon"], without["recon"])


def test_the_vae_task_trains_with_the_loss_quantiser_bits_and_refuses_models_with_their_own_forward():
    from rgbd_vae_ros.models import build_model, config_from_dict
    from rgbd_vae_training.train.tasks import TaskError, VAETask

    model = _tiny_conv_vae()
    config = model.config
    task = VAETask(config, ELBOLoss(quantiser_bits=4), 10.0)
    task.forward(model, {"input": torch.zeros(2, 4, 16, 16)})
    assert model.train_quantiser_bits == 4
    fc = build_model("fc_vae", config_from_dict("fc_vae", {"image_size": 8, "latent_dim": 4, "mode": "rgb"}))
    with pytest.raises(TaskError, match="loss.quantiser_bits needs a VAE that samples its code in VAE.forward"):
        VAETask(fc.config, ELBOLoss(quantiser_bits=4), 10.0).forward(fc, {"input": torch.zeros(2, 3, 8, 8)})
    with pytest.raises(ValueError, match="quantiser_bits must be 0 \\(off\\) to 16, got 17"):
        ELBOLoss(quantiser_bits=17)
