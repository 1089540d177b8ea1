"""mff_depth: depth + validity mask in both mask modes, torchvision-format encoder weights from a
local file, ONNX export with ONNX Runtime parity."""

import numpy as np
import pytest
import torch

from rgbd_vae_ros.models import ModelError, build_model
from rgbd_vae_ros.models.resnet_vae import load_torchvision_resnet

SMALL = {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1), "encoder_widths": (8, 16, 16, 32),
         "decoder_widths": (16, 8, 8, 8, 8), "mff_width": 4, "refine_width": 8, "mask_widths": (4, 8)}


def resnet18_state(widths=(64, 128, 256, 512), seed=0):
    """A state dict with the key names and shapes of torchvision's ``resnet18`` (stem, layers of
    2-2-2-2 basic blocks, a 1x1 downsample opening layers 2-4, fc), random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def bn(prefix, n):
        state.update({f"{prefix}.weight": torch.rand(n, generator=g), f"{prefix}.bias": torch.rand(n, generator=g),
                      f"{prefix}.running_mean": torch.rand(n, generator=g),
                      f"{prefix}.running_var": torch.rand(n, generator=g) + 0.5,
                      f"{prefix}.num_batches_tracked": torch.tensor(3)})

    state["conv1.weight"] = torch.randn(widths[0], 3, 7, 7, generator=g)
    bn("bn1", widths[0])
    in_ch = widths[0]
    for layer, width in enumerate(widths, start=1):
        for b in range(2):
            p = f"layer{layer}.{b}"
            state[f"{p}.conv1.weight"] = torch.randn(width, in_ch if b == 0 else width, 3, 3, generator=g)
            bn(f"{p}.bn1", width)
            state[f"{p}.conv2.weight"] = torch.randn(width, width, 3, 3, generator=g)
            bn(f"{p}.bn2", width)
            if b == 0 and layer > 1:
                state[f"{p}.downsample.0.weight"] = torch.randn(width, in_ch, 1, 1, generator=g)
                bn(f"{p}.downsample.1", width)
        in_ch = width
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, widths[-1], generator=g), torch.randn(1000, generator=g)
    return state


@pytest.mark.slow
@pytest.mark.parametrize("mask_mode", ["head", "two_stage"])
def test_depth_and_mask_come_at_the_input_size_in_both_mask_modes(mask_mode):
    torch.manual_seed(0)
    model = build_model("mff_depth", {**SMALL, "mask_mode": mask_mode}).eval()
    out = model(torch.rand(2, 3, 48, 64) * 2 - 1)
    assert set(out) == {"depth", "mask"} and model.kind == "depth"
    assert out["depth"].shape == out["mask"].shape == (2, 1, 48, 64)
    assert out["depth"].abs().max() <= 1 and torch.isfinite(out["mask"]).all()
    assert (model.mask_head is None) == (mask_mode == "two_stage") and (model.mask_net is None) == (mask_mode == "head")
    # other sizes too (progressive resizing trains at smaller ones), 4:3 or not divisible by 32
    assert model(torch.zeros(1, 3, 37, 50))["mask"].shape == (1, 1, 37, 50)


def test_two_stage_depth_sees_the_image_times_the_mask():
    torch.manual_seed(0)
    model = build_model("mff_depth", {**SMALL, "mask_mode": "two_stage"}).eval()
    rgb = torch.rand(1, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        model.mask_net.logits.weight.zero_()
        model.mask_net.logits.bias.fill_(-30.0)  # the mask says nothing is trusted: the image is blanked
        blanked = model(rgb)["depth"]
        assert torch.allclose(blanked, model(torch.rand(1, 3, 48, 64))["depth"], atol=1e-6)
        model.mask_net.logits.bias.fill_(30.0)  # everything trusted: depth of the image itself
        seen = model(rgb)["depth"]
        direct = torch.nn.functional.interpolate(model.depth_head(model.network(rgb)), size=(48, 64),
                                                 mode="bilinear", align_corners=False)
        assert torch.allclose(seen, torch.tanh(direct), atol=1e-6)
        assert not torch.allclose(seen, blanked, atol=1e-4)


def test_sizes_that_do_not_fit_are_clear_errors():
    with pytest.raises(ModelError, match="mask_mode 'both' is not one of head, two_stage"):
        build_model("mff_depth", {**SMALL, "mask_mode": "both"})
    with pytest.raises(ModelError, match="decoder_widths needs 5 entries"):
        build_model("mff_depth", {**SMALL, "decoder_widths": (16, 8)})
    with pytest.raises(ModelError, match="below 32 pixels"):
        build_model("mff_depth", {**SMALL, "input_height": 16})


def test_torchvision_resnet18_weights_load_into_the_encoder_from_a_local_file(tmp_path):
    state = resnet18_state()
    path = tmp_path / "resnet18-local.pth"
    torch.save(state, path)
    model = build_model("mff_depth", {**SMALL, "encoder_blocks": (2, 2, 2, 2), "encoder_widths": (64, 128, 256, 512)})
    load_torchvision_resnet(model, path)
    encoder = model.encoder.state_dict()
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(encoder[key], state[key]), key
    assert model(torch.zeros(1, 3, 48, 64))["depth"].shape == (1, 1, 48, 64)
    # the tiny encoder is not a ResNet-18: refused by name, nothing loaded
    small = build_model("mff_depth", SMALL)
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with pytest.raises(ModelError, match=r"is not a ResNet \(blocks \(1, 1, 1, 1\).*it lacks|has shape"):
        load_torchvision_resnet(small, path)
    assert all(torch.equal(before[k], v) for k, v in small.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("mask_mode", ["head", "two_stage"])
def test_onnx_export_of_depth_and_mask_matches_torch_in_onnx_runtime(tmp_path, mask_mode):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(1)
    model = build_model("mff_depth", {**SMALL, "mask_mode": mask_mode})
    model.train()
    for _ in range(2):  # BatchNorm statistics that are not the defaults
        model(torch.rand(4, 3, 48, 64) * 2 - 1)
    model.eval()

    class DepthAndMask(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, rgb):
            out = self.inner(rgb)
            return out["depth"], out["mask"]

    path = tmp_path / "mff_depth.onnx"
    rgb = torch.rand(2, 3, 48, 64) * 2 - 1
    torch.onnx.export(DepthAndMask(model).eval(), (rgb,), str(path), input_names=["rgb"], output_names=["depth", "mask"],
                      dynamic_axes={"rgb": {0: "batch"}, "depth": {0: "batch"}, "mask": {0: "batch"}},
                      opset_version=17, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = torch.rand(3, 3, 48, 64) * 2 - 1  # another batch size than the traced one
    depth, mask = session.run(["depth", "mask"], {"rgb": other.numpy()})
    with torch.no_grad():
        expected = model.eval()(other)
    np.testing.assert_allclose(depth, expected["depth"].numpy(), atol=1e-4)
    np.testing.assert_allclose(mask, expected["mask"].numpy(), atol=1e-3)
