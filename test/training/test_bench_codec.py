"""``rgbd-vae bench codec``: every latent codec and the equal-byte baselines, scored at two resolutions."""

import json

import numpy as np
import pytest
from PIL import Image

from rgbd_vae_training.cli import main as cli


@pytest.fixture(scope="module")
def exported_vae(tmp_path_factory, nyu_raw_dir):
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_training.export import export_checkpoint

    folder = tmp_path_factory.mktemp("codec_vae")
    torch.manual_seed(0)
    model = build_model("conv_vae", {"image_size": 32, "latent_dim": 16, "widths": [8, 16, 16]}).eval()
    torch.save(checkpoint_payload(model), folder / "vae.pt")
    export_checkpoint(str(folder / "vae.pt"), folder / "onnx", data=str(nyu_raw_dir))
    return folder / "onnx"


@pytest.mark.slow
def test_bench_codec_scores_every_codec_and_baseline_and_plots_them(exported_vae, nyu_raw_dir, tmp_path, capsys):
    out = tmp_path / "codec"
    assert cli(["bench", "codec", "--model-dir", str(exported_vae), "--data", str(nyu_raw_dir), "--runs", "2",
                "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {r["code"]: r for r in json.loads((out / "codec.json").read_text())}
    assert [rows[f"VAE mu {c}"]["bytes"] for c in ("f32", "f16", "q8", "q4")] == [64, 32, 16, 8]  # D = 16
    assert any(name.startswith("PCA-") and name.endswith("(at q8 bytes)") for name in rows)
    assert "thumbnail 2x2 (at q8 bytes)" in rows  # 16 bytes fit a 2x2 RGB + depth thumbnail exactly
    for name, row in rows.items():
        assert row["frames"] == 2 and row["resolution"] == "32x32", name
        assert np.isfinite(row["psnr_db_model"]) and np.isfinite(row["psnr_db_640x480"]), name
        assert 0 < row["ssim_640x480"] <= 1 and row["depth_rmse_m_model"] >= 0, name
        assert 0 < row["depth_published_model"] <= 1 and 0 < row["depth_published_640x480"] <= 1, name
        if "(at q8 bytes)" in name:
            assert row["bytes"] <= 16, name
        if "(at q4 bytes)" in name:
            assert row["bytes"] <= 8, name
    # q8 of an untrained model loses almost nothing against f32 (the quantiser spans its codes).
    assert abs(rows["VAE mu q8"]["psnr_db_model"] - rows["VAE mu f32"]["psnr_db_model"]) < 0.5
    assert "VAE mu q4" in printed and "PSNR dB 640x480" in printed and "message B" in printed
    assert printed.count("published") >= 2  # beside each depth RMSE: an RMSE over fewer pixels is not a better one
    assert "within 0.2 dB of f32 (the default latent_codec, SPEC §10): " in printed
    plot = np.asarray(Image.open(out / "codec.png").convert("RGB"))
    vae_red = (plot[..., 0] > 180) & (plot[..., 1] < 60) & (plot[..., 2] < 60)
    assert vae_red.sum() > 40  # the VAE's points (and its legend dot) are drawn


def test_bench_codec_refuses_a_folder_without_a_model(tmp_path, nyu_raw_dir, capsys):
    assert cli(["bench", "codec", "--model-dir", str(tmp_path), "--data", str(nyu_raw_dir), "--out",
                str(tmp_path / "o")]) == 1
    assert "rgbd-vae bench: error:" in capsys.readouterr().err
