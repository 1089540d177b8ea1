"""``rgbd-vae eval`` and the learning checks: tiny models trained on synthetic scenes beat the
trivial baselines on held-out scenes."""

import json

import numpy as np
import pytest
from PIL import Image

from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.evaluate import evaluate
from rgbd_vae_training.metrics import DEPTH_KEYS


@pytest.mark.parametrize("layout", ["labeled (trained on)", "raw"])
def test_tiny_depth_beats_the_mean_depth_baseline_on_held_out_scenes(tiny_depth_checkpoint, depth_learning_data,
                                                                      learning_data, tmp_path, layout):
    """Trained on full-frame depth (the labeled layout), as the demo trains it; the held-out rooms of
    both layouts: the raw reader's RGB has been through the lens and its depth is the registered one."""
    data = depth_learning_data if layout.startswith("labeled") else learning_data
    result = evaluate("depth", tiny_depth_checkpoint, data, tmp_path)
    model, baseline = result["depth"], result["mean_depth_baseline"]
    print(f"\ntiny_depth AbsRel {model['abs_rel']:.3f} vs mean depth {baseline['abs_rel']:.3f} on {result['images']} "
          f"{layout} frames")
    assert result["images"] >= 30
    assert model["abs_rel"] < baseline["abs_rel"]
    assert model["rmse"] < baseline["rmse"]


def test_tiny_vae_beats_the_mean_image_baseline_psnr(tiny_vae_checkpoint, learning_data, tmp_path):
    result = evaluate("vae", tiny_vae_checkpoint, learning_data, tmp_path)
    print(f"\ntiny_vae PSNR {result['rgb']['psnr_db']:.2f} dB vs mean image {result['mean_image_baseline']['psnr_db']:.2f} dB")
    assert result["rgb"]["psnr_db"] > result["mean_image_baseline"]["psnr_db"]
    assert 0 < result["rgb"]["ssim"] <= 1 and result["kl"] > 0
    assert result["depth_m"]["rmse"] < 10 and result["bytes_per_latent"]["mu_fp32"] == 4 * result["latent_dim"]


def test_tiny_vae_decodes_depth_where_the_held_out_frames_had_readings_and_not_in_their_holes(
        tiny_vae_checkpoint, learning_data, tmp_path):
    """The NYU raw frames' holes (the registration border, shadows of the IR projector) are not decoded as
    depth: a decoder that publishes every pixel, as one without the validity channel did, would put
    depth in all of them."""
    result = evaluate("vae", tiny_vae_checkpoint, learning_data, tmp_path)
    published, in_holes = result["depth_m"]["published"], result["holes_published"]
    print(f"\ntiny_vae publishes depth on {published:.3f} of the readings and {in_holes:.3f} of the holes")
    assert published > 0.9 and in_holes < 0.25


def test_eval_writes_metrics_json_and_a_figure(tiny_depth_checkpoint, learning_data, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli(["eval", "depth", "--checkpoint", str(tiny_depth_checkpoint), "--data", str(learning_data),
                "--out", str(out), "--limit", "5"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 5 and set(DEPTH_KEYS) <= set(metrics["depth"])
    figure = np.asarray(Image.open(out / "figure.png"))
    assert figure.ndim == 3 and figure.shape[0] > 100 and figure.std() > 10
    assert str(out / "metrics.json") in capsys.readouterr().out


def test_eval_names_what_is_wrong(tiny_vae_checkpoint, tiny_depth_checkpoint, learning_data, tmp_path, capsys):
    assert cli(["eval", "depth", "--checkpoint", str(tiny_vae_checkpoint), "--data", str(learning_data),
                "--out", str(tmp_path)]) == 1
    assert "does not estimate depth from RGB" in capsys.readouterr().err
    assert cli(["eval", "vae", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(learning_data)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli(["eval", "vae", "--checkpoint", str(tiny_depth_checkpoint), "--data", str(learning_data),
                "--out", str(tmp_path)]) == 1
    assert "unet_depth is a depth model; score it with 'eval depth'" in capsys.readouterr().err
    assert cli(["eval", "vae", "--checkpoint", str(tiny_vae_checkpoint), "--data", str(learning_data),
                "--limit", "-1", "--out", str(tmp_path)]) == 1
    assert "--limit is -1" in capsys.readouterr().err


def test_a_checkpoint_saved_outside_train_evaluates_and_infinite_psnr_is_written_as_null(learning_data, tmp_path):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_training.evaluate import _finite_or_null

    path = tmp_path / "bare.pt"  # weights and model config only, no training config
    torch.save(checkpoint_payload(build_model("conv_vae", {"image_size": 32, "latent_dim": 8,
                                                           "widths": [8, 16, 16]}).eval()), path)
    result = evaluate("vae", path, learning_data, tmp_path / "eval", limit=3)
    assert result["images"] == 3 and result["rgb"]["psnr_db"] > 0
    assert _finite_or_null({"psnr_db": float("inf"), "n": {"x": float("nan"), "y": 1.5}}) == \
        {"psnr_db": None, "n": {"x": None, "y": 1.5}}


def _untrained(tmp_path, name, config):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(build_model(name, config).eval()), path)
    return path


def _title_band_and_colour_bar(figure, columns):
    """Dark title pixels over each of ``columns`` (x ranges) and a blue-to-red strip at the bottom."""
    titles = figure[:14]
    assert all((titles[:, x0:x1] < 100).any() for x0, x1 in columns), "a column has no title"
    strip = figure[-38:-28]  # the colour bar: 10 rows of colour over 28 of tick labels and its caption
    coloured = np.flatnonzero((strip[5] != 255).any(axis=1))
    near, far = strip[5, coloured[1]].astype(int), strip[5, coloured[-1]].astype(int)
    assert near[2] > near[0] and far[0] > far[2]  # blue near, red far
    assert (figure[-28:] < 100).any()  # tick labels in metres


@pytest.mark.slow
def test_eval_prints_its_table_and_labels_its_figure(nyu_raw_dir, tmp_path, capsys):
    from PIL import Image

    depth = _untrained(tmp_path, "unet_depth", {"input_height": 32, "input_width": 32, "widths": [4, 8, 8],
                                                "attention_heads": 2})
    assert cli(["eval", "depth", "--checkpoint", str(depth), "--data", str(nyu_raw_dir), "--out",
                str(tmp_path / "d")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("unet_depth on 3 test images; baseline ")
    assert lines[0].endswith(" m everywhere (mean depth of the training split)")
    assert lines[1].split() == ["metric", "model", "mean", "depth", "baseline"]
    table = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert float(table["abs_rel"][0]) == pytest.approx(metrics["depth"]["abs_rel"], rel=1e-3)
    assert float(table["abs_rel"][1]) == pytest.approx(metrics["mean_depth_baseline"]["abs_rel"], rel=1e-3)
    assert json.loads(lines[-1])["figure"] == str(tmp_path / "d" / "figure.png")
    figure = np.asarray(Image.open(tmp_path / "d" / "figure.png"))
    third = (figure.shape[1] - 4) // 3  # three equal columns: input RGB, true depth, estimated depth
    _title_band_and_colour_bar(figure, [(2 + k * third, 2 + (k + 1) * third) for k in range(3)])

    vae = _untrained(tmp_path, "conv_vae", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]})
    assert cli(["eval", "vae", "--checkpoint", str(vae), "--data", str(nyu_raw_dir), "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "RGB PSNR (dB)" in out and "depth rmse (m)" in out and "bytes per latent (mu, fp32)" in out
    assert "codes at equal bytes" in out
    codes = {c["code"]: c for c in json.loads((tmp_path / "v" / "metrics.json").read_text())["codes"]}
    assert [codes[f"VAE mu {c}"]["bytes"] for c in ("f32", "q8", "q4")] == [32, 8, 4]  # latent_dim 8
    assert abs(codes["VAE mu q8"]["psnr_db"] - codes["VAE mu f32"]["psnr_db"]) < 0.5
    baselines = [c for name, c in codes.items() if not name.startswith("VAE")]
    assert any(name.startswith("PCA") for name in codes)  # (no thumbnail fits 8 bytes: 2x2 takes 16)
    assert all(c["bytes"] <= (8 if c["code"].endswith("(vs q8)") else 4) for c in baselines)
    figure = np.asarray(Image.open(tmp_path / "v" / "figure.png"))
    quarter = (figure.shape[1] - 2) // 4
    _title_band_and_colour_bar(figure, [(2 + k * quarter, 2 + (k + 1) * quarter) for k in range(4)])


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tum", "7scenes"])
def test_eval_depth_scores_every_frame_of_a_set_without_a_training_split(layout, tmp_path, capsys):
    assert cli(["synth", "--layout", layout, "--scenes", "1", "--frames", "4", "--out", str(tmp_path / "data"),
                "--width", "64", "--height", "48"]) == 0
    capsys.readouterr()
    depth = _untrained(tmp_path, "unet_depth", {"input_height": 32, "input_width": 32, "widths": [4, 8, 8],
                                                "attention_heads": 2})
    args = ["eval", "depth", "--checkpoint", str(depth), "--data", str(tmp_path / "data"), "--split", "all"]
    assert cli([*args, "--out", str(tmp_path / "a")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("unet_depth on 4 all images; baseline ")
    assert "(mean depth of the scored frames themselves (no training split))" in lines[0]
    assert "abs_rel" in "\n".join(lines)
    assert cli([*args, "--baseline-depth", "2.5", "--out", str(tmp_path / "b")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("baseline 2.5 m everywhere (--baseline-depth)")
    assert lines[1].split() == ["metric", "model", "constant", "depth", "baseline"]
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["split"] == "all" and metrics["images"] == 4
    assert metrics["mean_depth_baseline"]["depth_m"] == 2.5
    # The model's scores do not depend on the baseline; the baseline's do.
    first = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["depth"] == first["depth"]
    assert metrics["mean_depth_baseline"]["abs_rel"] != first["mean_depth_baseline"]["abs_rel"]
    vae = _untrained(tmp_path, "conv_vae", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]})
    assert cli(["eval", "vae", "--checkpoint", str(vae), "--data", str(tmp_path / "data"), "--split", "all",
                "--out", str(tmp_path / "v")]) == 0
    assert capsys.readouterr().out.startswith("conv_vae on 4 all images")


def test_eval_refuses_a_baseline_depth_that_is_no_depth(nyu_raw_dir, tmp_path, capsys):
    depth = _untrained(tmp_path, "unet_depth", {"input_height": 32, "input_width": 32, "widths": [4, 8, 8],
                                                "attention_heads": 2})
    for bad in ("0", "-1", "nan"):
        assert cli(["eval", "depth", "--checkpoint", str(depth), "--data", str(nyu_raw_dir),
                    "--baseline-depth", bad, "--out", str(tmp_path / "x")]) == 1
        assert "--baseline-depth is" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_mean_image_is_the_mean_of_the_training_frames_at_the_first_ones_size():
    from rgbd_vae_training.data.frame import RGBDFrame
    from rgbd_vae_training.evaluate import mean_image

    frames = [RGBDFrame(np.full((4, 6, 3), 0, np.uint8), None), RGBDFrame(np.full((8, 12, 3), 100, np.uint8), None)]
    mean = mean_image(frames)
    assert mean.dtype == np.uint8 and mean.shape == (4, 6, 3) and np.all(mean == 50)
    with pytest.raises(ValueError, match="no training frames for the mean-image baseline"):
        mean_image([])


def test_depth_predictor_gives_each_models_metres_and_mask_as_its_forward_pass_does():
    """eval depth's predictions: an rgb2rgbd VAE's decoded depth channel and its decoded validity as
    the mask probability, a plain depth model's depth and no mask, from RGB uint8 at the model size."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.processing import depth_from_unit_range
    from rgbd_vae_training.evaluate import depth_predictor

    torch.manual_seed(0)
    rgb_u8 = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(rgb_u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    vae = build_model("rgb2rgbd", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]}).eval()
    depth_m, mask = depth_predictor(vae, 10.0, with_mask=True)(rgb_u8)
    with torch.no_grad():
        recon = vae(x)["recon"].numpy()
    np.testing.assert_allclose(depth_m, depth_from_unit_range(recon[:, 3], 10.0), atol=1e-5)
    np.testing.assert_allclose(mask, (recon[:, 4] + 1) / 2, atol=1e-6)
    assert depth_m.shape == mask.shape == (2, 32, 32)
    unet = build_model("unet_depth", {"input_height": 32, "input_width": 32, "widths": [4, 8]}).eval()
    plain = depth_predictor(unet, 10.0)(rgb_u8)
    with torch.no_grad():
        expected = depth_from_unit_range(unet(x)["depth"][:, 0].numpy(), 10.0)
    np.testing.assert_allclose(plain, expected, atol=1e-5)
    with pytest.raises(ValueError, match="does not estimate depth from RGB"):
        depth_predictor(build_model("conv_vae", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]}), 10.0)
