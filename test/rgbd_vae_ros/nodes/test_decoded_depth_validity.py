"""Decoded depth is never published where it was not a value the decoder was trained to make (SPEC
§4.2): where the decoded validity channel says the encoded frame had no reading, and outside
[min_depth, max_depth]. Models here have their validity set by hand (the last conv's bias), so what
the decoder must drop is known exactly; test/training/test_evaluate.py checks that a trained VAE
learns it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from std_msgs.msg import Header

from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.latent import build_latent_message, model_id
from rgbd_vae_ros.models import build_model
from rgbd_vae_ros.models.checkpoint import checkpoint_payload
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_ros.nodes.processors import Decoder
from rgbd_vae_ros.stages import DecodeStage

CONFIG = {"image_size": 32, "latent_dim": 16, "widths": (16, 32, 32)}
MAX_DEPTH_M = 8.0


def _vae_with_validity(tmp_path, validity_bias: float | np.ndarray, name: str):
    """A small conv_vae whose decoded validity is ``validity_bias`` (a number, or (32, 32) per pixel, in
    pre-tanh units) whatever the code: the validity channel's weights are zero, its bias that value.
    Exported to ONNX: (checkpoint, export folder)."""
    from rgbd_vae_training.export import export_checkpoint

    torch.manual_seed(0)
    model = build_model("conv_vae", {**CONFIG, "linear_path": True}).eval()
    last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight[4].zero_()
        last.bias[4] = 0.0
        model.linear.weight.view(5, 32, 32, -1)[4].zero_()
        model.linear.bias.view(5, 32, 32)[4] = torch.as_tensor(validity_bias, dtype=torch.float32)
    checkpoint = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(model, config={"train": {"max_depth_m": MAX_DEPTH_M}}), checkpoint)
    export_checkpoint(checkpoint, tmp_path / name)
    return checkpoint, tmp_path / name


MU = np.random.default_rng(4).normal(size=16).astype(np.float32)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_decoder_drops_depth_exactly_where_its_validity_says_the_frame_had_none(tmp_path, backend):
    left_none = np.full((32, 32), 20.0, np.float32)
    left_none[:, :12] = -20.0  # the left 12 columns: no reading in the encoded frame
    for bias, expected_none in ((20.0, np.zeros((32, 32), bool)), (-20.0, np.ones((32, 32), bool)),
                                (left_none, left_none < 0)):
        checkpoint, folder = _vae_with_validity(tmp_path, bias, f"v{np.size(bias)}{np.mean(bias):+.0f}")
        stage = DecodeStage.open(checkpoint if backend == "torch" else folder, backend=backend)
        rgb, depth = stage(MU)
        assert rgb.shape == (32, 32, 3) and depth.shape == (32, 32)
        np.testing.assert_array_equal(np.isnan(depth), expected_none)
        assert np.all((depth[~expected_none] >= 0) & (depth[~expected_none] <= MAX_DEPTH_M))
        # enlarged, a hole stays a hole (no reading is smeared into its neighbours' metres)
        _, big = stage(MU, output_size=(96, 96))
        assert np.isnan(big).mean() == pytest.approx(expected_none.mean(), abs=0.02)
        if expected_none.any() and not expected_none.all():
            assert np.isnan(big[:, :33]).all() and not np.isnan(big[:, 40:]).any()


def _latent(sec: int, folder) -> Frame:
    stage = DecodeStage.open(folder)
    header = Header(frame_id="camera")
    header.stamp.sec = sec
    msg = build_latent_message(header, MU, codec="f32", depth="measured",
                               model=model_id(stage.info.checkpoint_sha256))
    stage.close()
    return Frame(msg)


def test_the_decoder_node_drops_decoded_depth_outside_min_and_max_depth_and_counts_the_share(tmp_path):
    _, folder = _vae_with_validity(tmp_path, 20.0, "valid")  # the decoder publishes every pixel
    reference = DecodeStage.open(folder)(MU)[1]
    low, high = np.quantile(reference, [0.25, 0.75])
    params = {**defaults(), "model": str(folder), "backend": "onnxruntime", "min_depth": float(low),
              "max_depth": float(high)}
    decoder = Decoder(params.__getitem__)
    try:
        from rgbd_vae_ros.conversion import image_to_numpy

        depth = image_to_numpy(dict(decoder(_latent(1, folder)))["decoded/depth"])
        outside = (reference < low) | (reference > high)
        assert outside.mean() == pytest.approx(0.5, abs=0.05)
        np.testing.assert_array_equal(np.isnan(depth), outside)  # never clamped into range
        np.testing.assert_array_equal(depth[~outside], reference[~outside])
        assert decoder.counts["decoded_depth_none_share"] == pytest.approx(outside.mean(), abs=1e-4)
        params["min_depth"], params["max_depth"] = 0.0, MAX_DEPTH_M  # read per frame
        depth = image_to_numpy(dict(decoder(_latent(2, folder)))["decoded/depth"])
        assert not np.isnan(depth).any()
        assert decoder.counts["decoded_depth_none_share"] == pytest.approx(outside.mean() / 2, abs=1e-4)
    finally:
        decoder.close()
