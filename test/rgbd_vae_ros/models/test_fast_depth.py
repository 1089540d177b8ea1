"""``fast_depth`` (SPEC §5): the FastDepth architecture, its cost at the default 4:3 input, sizes and
widths as configuration, ONNX export with ONNX Runtime equal to torch, and a tiny one that learns."""

import numpy as np
import pytest
import torch
from torch import nn

from rgbd_vae_ros.models import ModelError, build_model, model_from_checkpoint
from rgbd_vae_ros.models.parts import example_inputs
from rgbd_vae_training.bench.backends import count_flops


def _flops(model) -> int:
    c = model.config
    return count_flops(model.eval(), (torch.zeros(1, 3, c.input_height, c.input_width),))


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_default_input_is_4_3_and_the_output_is_depth_at_the_input_size_in_the_unit_range():
    torch.manual_seed(0)
    model = build_model("fast_depth").eval()
    assert (model.config.input_height, model.config.input_width) == (192, 256)
    with torch.no_grad():
        depth = model(torch.rand(2, 3, 192, 256) * 2 - 1)["depth"]
    assert depth.shape == (2, 1, 192, 256)
    assert depth.abs().max() <= 1 and depth.std() > 0


def test_default_costs_at_most_one_gflop_and_the_width_multiplier_scales_cost_and_parameters():
    model = build_model("fast_depth")
    flops, params = _flops(model), _params(model)
    print(f"\nfast_depth 192x256: {flops / 1e9:.3f} GFLOP, {params / 1e6:.2f} M parameters")
    assert 0.2e9 < flops <= 1e9  # SPEC §5: at most 1 GFLOP (2 per multiply-add) at the default input
    assert 1e6 < params < 3e6  # MobileNetV2's encoder without its 1280-wide head is about 1.8 M
    half = build_model("fast_depth", {"width_multiplier": 0.5})
    assert _flops(half) < 0.5 * flops and _params(half) < 0.5 * params


def test_encoder_is_inverted_residuals_and_decoder_is_nnconv5_with_additive_skips():
    model = build_model("fast_depth")
    encoder_convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in encoder_convs if c.groups > 1]
    assert depthwise and all(c.groups == c.in_channels == c.out_channels and c.kernel_size == (3, 3) for c in depthwise)
    assert len(depthwise) == 17  # MobileNetV2's 17 inverted residual blocks
    assert any(isinstance(m, nn.ReLU6) for m in model.encoder.modules())
    strides = [c.stride[0] for c in encoder_convs if c.stride[0] > 1]
    assert strides == [2] * 5 and len(model.encoder) == 5  # 1/2 ... 1/32, one stage per scale
    assert len(model.decoder) == 5  # back to the input size
    for stage in model.decoder:
        dw, pw = [m for m in stage if isinstance(m, nn.Conv2d)]
        assert dw.kernel_size == (5, 5) and dw.groups == dw.in_channels and pw.kernel_size == (1, 1)
    # additive skips: each decoder stage ends at the width of the encoder map of the scale it returns to
    encoder_widths = [[m for m in s.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features for s in model.encoder]
    decoder_widths = [[m for m in s if isinstance(m, nn.Conv2d)][-1].out_channels for s in model.decoder]
    assert decoder_widths[:-1] == encoder_widths[:-1][::-1]
    assert decoder_widths[-1] == model.config.final_width and model.output.in_channels == model.config.final_width


def test_the_finest_encoder_map_reaches_the_output_through_its_skip():
    """Shift the 1/2-scale encoder map and undo the shift where the encoder goes on: only the skip
    sees the change, and the depth still changes."""
    torch.manual_seed(0)
    model = build_model("fast_depth", {"input_height": 64, "input_width": 64, "width_multiplier": 0.35}).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        plain = model(x)["depth"]
        handles = [model.encoder[0].register_forward_hook(lambda module, args, out: out + 1.0),
                   model.encoder[1].register_forward_pre_hook(lambda module, args: (args[0] - 1.0,))]
        through_skip = model(x)["depth"]
        for handle in handles:
            handle.remove()
        assert torch.equal(model(x)["depth"], plain)
    assert (plain - through_skip).abs().max() > 1e-3  # far above the rounding of the shift and its undoing


@pytest.mark.parametrize("size", [(32, 32), (96, 128), (64, 160)])
def test_any_size_that_halves_five_times_is_taken_and_kept(size):
    model = build_model("fast_depth", {"input_height": size[0], "input_width": size[1],
                                       "width_multiplier": 0.35, "final_width": 8}).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, *size))["depth"].shape == (1, 1, *size)


@pytest.mark.parametrize("values, message", [
    ({"input_height": 168}, "input_height 168 is not a multiple of 32"),
    ({"input_width": 100}, "input_width 100 is not a multiple of 32"),
    ({"width_multiplier": 0}, "width_multiplier must be > 0"),
    ({"final_width": 0}, "final_width must be positive"),
    ({"width_multiplier": "wide"}, "width_multiplier must be float"),
])
def test_bad_settings_are_one_clear_error(values, message):
    with pytest.raises(ModelError, match=message):
        build_model("fast_depth", values)


@pytest.mark.slow
def test_exported_onnx_carries_its_metadata_and_onnx_runtime_equals_torch(exported, small_checkpoints):
    from rgbd_vae_ros.inference import open_backend

    folder, rows = exported["fast_depth"]
    assert [r["part"] for r in rows] == ["depth"] and rows[0]["max_abs_error"] < 1e-4
    ort = open_backend(folder / "depth.onnx", "depth", backend="onnxruntime")
    eager = open_backend(small_checkpoints["fast_depth"], "depth", backend="torch")
    assert ort.info.model_name == "fast_depth" and ort.info.kind == "depth"
    assert ort.info.input_shape == [3, 32, 64] and ort.info.config["width_multiplier"] == 0.35
    model = model_from_checkpoint(small_checkpoints["fast_depth"])
    for batch in (1, 3):  # dynamic batch
        (rgb,) = example_inputs(model, "depth", batch, torch.Generator().manual_seed(5 + batch))
        got, expected = ort.run({"rgb": rgb.numpy()}), eager.run({"rgb": rgb.numpy()})
        assert got["depth"].shape == (batch, 1, 32, 64)
        np.testing.assert_allclose(got["depth"], expected["depth"], atol=1e-4, rtol=0)
    ort.close()
    eager.close()


@pytest.mark.slow  # trains 600 steps: about 100 s on one core
def test_tiny_fast_depth_learns_and_beats_the_mean_depth_baseline_on_held_out_frames(tmp_path, learning_data):
    from rgbd_vae_training.evaluate import evaluate
    from rgbd_vae_training.train.config import load_config
    from rgbd_vae_training.train.loop import train

    data = learning_data  # the demo's training rooms, in the NYU raw layout
    result = train(load_config("tiny_fast_depth"), data, tmp_path / "run", progress=False)
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last < 0.6 * first, (first, last)
    scores = evaluate("depth", str(result.checkpoint), str(data), tmp_path / "eval")
    model, baseline = scores["depth"], scores["mean_depth_baseline"]
    print(f"\ntiny_fast_depth AbsRel {model['abs_rel']:.3f} vs mean depth {baseline['abs_rel']:.3f} "
          f"on {scores['images']} held-out frames")
    assert scores["images"] >= 30
    assert model["abs_rel"] < baseline["abs_rel"] and model["rmse"] < baseline["rmse"]
