"""resnet_vae: torchvision-format ResNet-34 weights from a local file, and frozen stages."""

import pytest
import torch

from rgbd_vae_ros.models import ModelError, build_model, load_torchvision_resnet34

SMALL = {"image_size": 32, "latent_dim": 8, "decoder_widths": (32, 16, 16, 16, 16, 16)}


def torchvision_resnet34_state(seed=0):
    """A state dict with the key names and shapes of torchvision's ``resnet34`` (written from its
    architecture: stem, layers of 3-4-6-3 basic blocks, a 1x1 downsample opening layers 2-4, fc)."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def bn(prefix, n):
        state.update({f"{prefix}.weight": torch.rand(n, generator=g), f"{prefix}.bias": torch.rand(n, generator=g),
                      f"{prefix}.running_mean": torch.rand(n, generator=g), f"{prefix}.running_var": torch.rand(n, generator=g) + 0.5,
                      f"{prefix}.num_batches_tracked": torch.tensor(7)})

    state["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=g)
    bn("bn1", 64)
    in_ch = 64
    for layer, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            state[f"{p}.conv1.weight"] = torch.randn(width, in_ch if b == 0 else width, 3, 3, generator=g)
            bn(f"{p}.bn1", width)
            state[f"{p}.conv2.weight"] = torch.randn(width, width, 3, 3, generator=g)
            bn(f"{p}.bn2", width)
            if b == 0 and layer > 1:
                state[f"{p}.downsample.0.weight"] = torch.randn(width, in_ch, 1, 1, generator=g)
                bn(f"{p}.downsample.1", width)
        in_ch = width
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512, generator=g), torch.randn(1000, generator=g)
    return state


@pytest.mark.slow
def test_torchvision_weights_load_and_the_depth_filter_starts_as_the_rgb_mean(tmp_path):
    state = torchvision_resnet34_state()
    path = tmp_path / "resnet34-local.pth"
    torch.save(state, path)
    model = build_model("resnet_vae", SMALL)  # rgbd: 4 input channels
    load_torchvision_resnet34(model, path)
    enc = model.encoder.state_dict()
    assert torch.equal(enc["layer3.0.downsample.0.weight"], state["layer3.0.downsample.0.weight"])
    assert torch.equal(enc["conv1.weight"][:, :3], state["conv1.weight"])
    assert torch.allclose(enc["conv1.weight"][:, 3], state["conv1.weight"].mean(dim=1))
    rgb_only = build_model("resnet_vae", {**SMALL, "mode": "rgb"})
    load_torchvision_resnet34(rgb_only, path)
    assert torch.equal(rgb_only.encoder.conv1.weight, state["conv1.weight"])


@pytest.mark.slow
def test_weights_of_another_network_are_refused_clearly(tmp_path):
    state = torchvision_resnet34_state()
    del state["layer4.2.conv2.weight"]
    torch.save(state, tmp_path / "resnet18ish.pth")
    with pytest.raises(ModelError, match="not a ResNet-34 state dict: it lacks 'layer4.2.conv2.weight'"):
        load_torchvision_resnet34(build_model("resnet_vae", SMALL), tmp_path / "resnet18ish.pth")
    with pytest.raises(ModelError, match="does not exist"):
        load_torchvision_resnet34(build_model("resnet_vae", SMALL), tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="is not a torchvision weights file"):
        load_torchvision_resnet34(build_model("resnet_vae", SMALL), tmp_path / "junk.pth")


@pytest.mark.slow
def test_frozen_stages_keep_their_weights_and_statistics_while_the_rest_trains():
    torch.manual_seed(0)
    model = build_model("resnet_vae", {**SMALL, "freeze_stages": 2}).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.rand(2, 4, 32, 32))
    out["recon"].square().mean().backward()
    optimizer.step()
    after = model.state_dict()
    for key in ("encoder.conv1.weight", "encoder.bn1.running_mean", "encoder.layer1.0.conv1.weight",
                "encoder.layer2.1.bn2.running_var"):
        assert torch.equal(before[key], after[key]), key
    for key in ("encoder.layer3.0.conv1.weight", "encoder.layer4.0.bn1.running_mean"):
        assert not torch.equal(before[key], after[key]), key
    with pytest.raises(ModelError, match="freeze_stages must be 0, 1 or 2"):
        build_model("resnet_vae", {**SMALL, "freeze_stages": 3})
