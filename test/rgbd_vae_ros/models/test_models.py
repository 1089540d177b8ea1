"""The model zoo: shapes, ranges, the conv_vae layer list of SPEC §5, each model learning a batch."""

import dataclasses

import pytest
import torch
from torch import nn

from rgbd_vae_ros.models import MODES, ModelError, build_model, config_from_dict, model_names

VAES = ["conv_vae", "resnet_vae", "fc_vae", "cvae", "vgg_vae", "rgb2rgbd"]

def _smooth(batch, channels, height, width, generator=None):
    """Images in [-1, 1] with structure a network can learn: random 4x4 patterns, upsampled."""
    coarse = torch.rand(batch, channels, 4, 4, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def _inputs(model, batch=2, generator=None):
    c = model.config
    if model.kind == "depth":
        return (_smooth(batch, 3, c.input_height, c.input_width, generator),), {}
    x = _smooth(batch, c.in_channels, c.image_size, c.image_size, generator)
    kwargs = {"label": torch.arange(batch) % c.num_classes} if getattr(c, "num_classes", 0) else {}
    return (x,), kwargs


def test_registry_holds_every_model_of_the_spec():
    assert set(model_names()) == set(VAES) | {"unet_depth", "fast_depth", "mff_depth"}


@pytest.mark.slow
def test_parameter_counts_are_reported(capsys):
    rows = []
    for name in model_names():
        model = build_model(name)
        rows.append(f"{name:12s} {sum(p.numel() for p in model.parameters()) / 1e6:7.2f} M parameters")
    with capsys.disabled():
        print("\n" + "\n".join(rows))
    unet = build_model("unet_depth")
    assert 8e6 < sum(p.numel() for p in unet.parameters()) < 12e6  # "about 10 M"


@pytest.mark.slow
@pytest.mark.parametrize("name", model_names())
def test_default_model_output_shapes_and_ranges(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    args, kwargs = _inputs(model)
    with torch.no_grad():
        out = model(*args, **kwargs)
    c = model.config
    if model.kind == "depth":
        assert set(out) == ({"depth", "mask"} if name == "mff_depth" else {"depth"})  # mff: + mask logits
        assert all(o.shape == (2, 1, c.input_height, c.input_width) for o in out.values())
        assert out["depth"].abs().max() <= 1
        return
    assert set(out) == {"recon", "recon_logits", "mu", "logvar"}
    # the tanh is the VAE's, after decode_logits: one inside a decoder would be applied twice and
    # leave recon_logits in [-1, 1], where the validity loss's gradient vanishes again
    assert not any(isinstance(m, torch.nn.Tanh) for m in model.modules())
    assert out["recon"].shape == (2, c.out_channels, c.image_size, c.image_size)
    assert out["recon"].abs().max() <= 1  # tanh: the shared [-1, 1] range
    assert torch.equal(out["recon"], torch.tanh(out["recon_logits"]))  # the values before it, for the loss
    assert out["mu"].shape == out["logvar"].shape == (2, c.latent_dim)
    assert torch.isfinite(out["logvar"]).all()


@pytest.mark.parametrize("name", [n for n in VAES if n not in ("fc_vae", "cvae")])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_conv_vae_runs_in_every_mode(name, mode, small_configs):
    model = build_model(name, {**small_configs[name], "mode": mode}).eval()
    x = torch.zeros(1, MODES[mode][0], 32, 32)
    with torch.no_grad():
        assert model(x)["recon"].shape == (1, MODES[mode][1], 32, 32)


def test_rgb2rgbd_is_conv_vae_with_three_channels_in_and_five_out():
    model = build_model("rgb2rgbd")  # out: RGB, depth and the decoded depth's validity
    assert (model.config.in_channels, model.config.out_channels) == (3, 5)
    assert model.encoder[0][0].in_channels == 3


@pytest.mark.parametrize("size", [(64, 96), (240, 320), (480, 640)])
def test_unet_depth_takes_any_size_divisible_by_16_and_keeps_it(size):
    model = build_model("unet_depth", {"input_height": size[0], "input_width": size[1], "widths": (8, 16, 32, 64, 64),
                                       "attention_heads": 4}).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, *size))["depth"].shape == (1, 1, *size)


def test_unet_depth_attention_is_optional_and_changes_the_network(small_configs):
    with_attention = build_model("unet_depth", small_configs["unet_depth"])
    without = build_model("unet_depth", {**small_configs["unet_depth"], "attention": False})
    assert isinstance(without.attention, nn.Identity)
    assert sum(p.numel() for p in with_attention.parameters()) > sum(p.numel() for p in without.parameters())


def _log_head_unet(small_configs, seed=0):
    torch.manual_seed(seed)
    return build_model("unet_depth", {**small_configs["unet_depth"], "head": "log"}).eval()


def test_unet_depth_log_head_starts_at_a_quarter_of_max_depth_everywhere(small_configs):
    from rgbd_vae_ros.models.unet_depth import LOG_HEAD_START

    model = _log_head_unet(small_configs)
    with torch.no_grad():
        depth = model(_smooth(3, 3, 36, 48, torch.Generator().manual_seed(1)))["depth"]
    assert LOG_HEAD_START == 0.25  # 2.5 m of 10 m: an indoor room's middle distance
    torch.testing.assert_close(depth, torch.full_like(depth, 2 * LOG_HEAD_START - 1))  # whatever the image


def test_unet_depth_log_head_is_one_scale_per_image_times_a_per_pixel_shape_within_range(small_configs):
    model = _log_head_unet(small_configs)
    images = _smooth(4, 3, 36, 48, torch.Generator().manual_seed(2))
    with torch.no_grad():
        nn.init.normal_(model.scale.weight, std=0.5)  # the scale now follows the image
        flat = (model(images)["depth"] + 1) / 2
        per_image = flat.flatten(1)
        assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))  # constant within an image
        assert per_image[:, 0].max() > 1.1 * per_image[:, 0].min()  # different between images
        nn.init.normal_(model.output.weight, std=0.3)  # a per-pixel shape on top
        shaped = (model(images)["depth"] + 1) / 2
    ratio = shaped / flat  # exp(the shape): the scale is the same multiplier for every pixel of an image
    assert ratio.flatten(1).std(dim=1).min() > 0
    with torch.no_grad():
        model.scale.bias.fill_(5.0)  # e^5 of max depth: the head never goes beyond max depth
        far = model(images)["depth"]
    assert far.max() <= 1 and far.min() > -1 and (far == 1).any()
    assert (shaped > 0).all()  # depth above 0 m everywhere: a log head has no way to say 0


def test_unet_depth_refuses_a_head_it_does_not_have(small_configs):
    with pytest.raises(ModelError, match="head 'sigmoid' is not one of tanh, log"):
        build_model("unet_depth", {**small_configs["unet_depth"], "head": "sigmoid"})


def test_conv_vae_layers_are_exactly_the_seed_description():
    model = build_model("conv_vae")
    assert model.config.latent_dim == 400 and model.config.image_size == 128
    # encoder: 5 x (conv 4x4 stride 2 pad 1, BN, LeakyReLU 0.2) over 64-128-256-512-512
    blocks = list(model.encoder)
    assert len(blocks) == 5
    in_ch = 4
    for block, width in zip(blocks, (64, 128, 256, 512, 512)):
        conv, bn, act = block
        assert isinstance(conv, nn.Conv2d) and (conv.in_channels, conv.out_channels) == (in_ch, width)
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
        assert isinstance(bn, nn.BatchNorm2d) and bn.num_features == width
        assert isinstance(act, nn.LeakyReLU) and act.negative_slope == 0.2
        in_ch = width
    # FC -> mu, log sigma^2 from 512 x 4 x 4
    assert (model.head.fc_mu.in_features, model.head.fc_mu.out_features) == (512 * 4 * 4, 400)
    assert (model.head.fc_logvar.in_features, model.head.fc_logvar.out_features) == (512 * 4 * 4, 400)
    # decoder: FC -> 512 x 4 x 4, then 5 x (nearest x2, conv 3x3), BN + LeakyReLU on all but the last, tanh
    decoder = model.decoder
    assert (decoder.fc.in_features, decoder.fc.out_features) == (400, 512 * 4 * 4) and decoder.start == 4
    layers = list(decoder.layers)
    ups = [m for m in layers if isinstance(m, nn.Upsample)]
    assert len(ups) == 5 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    convs = [m for m in decoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(512, 512), (512, 256), (256, 128), (128, 64), (64, 5)]  # RGB, depth, validity
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    assert len([m for m in decoder.modules() if isinstance(m, nn.BatchNorm2d)]) == 4
    acts = [m for m in decoder.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    assert isinstance(layers[-1], nn.Conv2d)  # the last conv has no BN/act; the VAE's tanh follows it
    z = torch.randn(2, 400)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.decode(z), torch.tanh(model.decode_logits(z)))


def test_eval_mode_is_deterministic_and_training_mode_samples(small_configs):
    model = build_model("conv_vae", small_configs["conv_vae"])
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)["recon"], model(x)["recon"])
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x)["recon"], model(x)["recon"])


def test_cvae_needs_its_label_and_the_label_changes_the_output(small_configs):
    model = build_model("cvae", small_configs["cvae"]).eval()
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match="conditional"):
        model(x)
    with torch.no_grad():
        assert not torch.allclose(model(x, torch.tensor([1]))["recon"], model(x, torch.tensor([7]))["recon"])


def test_bad_names_settings_and_values_are_clear_errors():
    with pytest.raises(ModelError, match="unknown model 'convvae'"):
        build_model("convvae")
    with pytest.raises(ModelError, match="no setting 'latent'"):
        config_from_dict("conv_vae", {"latent": 3})
    with pytest.raises(ModelError, match="latent_dim must be int, got '400'"):
        config_from_dict("conv_vae", {"latent_dim": "400"})
    with pytest.raises(ModelError, match="image_size 100 is not a multiple of 32"):
        build_model("conv_vae", {"image_size": 100})
    with pytest.raises(ModelError, match="mode 'depth' is not one of"):
        config_from_dict("vgg_vae", {"mode": "depth"})
    with pytest.raises(ModelError, match="input_height 250 is not a multiple of 16"):
        config_from_dict("unet_depth", {"input_height": 250})


def test_configs_are_plain_dataclasses_that_round_trip(small_configs):
    for name in model_names():
        config = build_model(name, small_configs[name]).config
        assert config_from_dict(name, dataclasses.asdict(config)) == config


@pytest.mark.slow
@pytest.mark.parametrize("name", model_names())
def test_each_model_overfits_one_tiny_batch(name, small_configs):
    """Loss falls by at least half in a few dozen steps on 4 fixed samples."""
    from rgbd_vae_training.losses import DepthLoss, ELBOLoss

    torch.manual_seed(0)
    model = build_model(name, small_configs[name])
    generator = torch.Generator().manual_seed(1)
    args, kwargs = _inputs(model, batch=4, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    if model.kind == "depth":
        c = model.config
        target = args[0].mean(dim=1, keepdim=True)  # depth that follows the picture
        valid = torch.ones_like(target, dtype=torch.bool)
        loss_fn = lambda out: DepthLoss(w_l1=1.0)(out["depth"], target, valid)["loss"]  # noqa: E731
    else:
        c = model.config
        x = args[0]  # autoencoding; rgb2rgbd also reconstructs a depth channel made from its RGB
        target = x if c.mode != "rgb2rgbd" else torch.cat([x, x.mean(dim=1, keepdim=True)], dim=1)
        loss_fn = lambda out: ELBOLoss(beta=0.01)(out, target, None, 0)["loss"]  # noqa: E731
    losses = []
    for _ in range(40):
        loss = loss_fn(model(*args, **kwargs))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.5 * losses[0], losses[::8]
