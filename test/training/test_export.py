"""``rgbd-vae export`` and ``rgbd-vae bench backends`` from the command line."""

import json

import numpy as np
import onnx
import pytest
import torch

from rgbd_vae_ros.inference.metadata import METADATA_KEY
from rgbd_vae_ros.models import build_model
from rgbd_vae_ros.models.checkpoint import checkpoint_payload
from rgbd_vae_training.cli import main as cli


def _checkpoint(tmp_path, name, config):
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(build_model(name, config).eval()), path)
    return path


@pytest.mark.slow
def test_export_writes_checked_onnx_with_metadata_and_reports_parity(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path, "rgb2rgbd", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]})
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs error vs torch" in out
    exported = json.loads(out.strip().splitlines()[-1])["exported"]
    assert sorted(p.rsplit("/", 1)[1] for p in exported) == ["decoder.onnx", "depth.onnx", "encoder.onnx"]
    for path in exported:
        proto = onnx.load(path)
        onnx.checker.check_model(proto, full_check=True)
        meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
        assert meta["model_name"] == "rgb2rgbd" and meta["config"]["latent_dim"] == 8
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert not list((tmp_path / "onnx").glob(".*.tmp"))


def test_export_refuses_what_cannot_deploy(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path, "cvae", {"image_size": 8, "hidden": [16]})
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x")]) == 1
    assert "conditional on a class label" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert cli(["export", "--checkpoint", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x")]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_an_export_failing_half_way_writes_no_part_and_keeps_the_old_ones(tmp_path, monkeypatch, capsys):
    import errno

    from rgbd_vae_ros import files

    config = {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]}
    out = tmp_path / "onnx"
    assert cli(["export", "--checkpoint", str(_checkpoint(tmp_path, "conv_vae", config)), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["decoder.onnx", "encoder.onnx"]
    real_write, writes = files.atomic_write_bytes, []

    def disk_full_at_the_second_part(path, data):
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(files, "atomic_write_bytes", disk_full_at_the_second_part)
    other = _checkpoint(tmp_path, "conv_vae", {**config, "latent_dim": 9})
    assert cli(["export", "--checkpoint", str(other), "--out", str(out)]) == 1
    assert "No space left on device; nothing was exported and the folder is as it was" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # not a new encoder beside an old decoder
    writes.clear()
    assert cli(["export", "--checkpoint", str(other), "--out", str(tmp_path / "new")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv_vae.pt", "onnx"]  # no folder, no staging left


@pytest.mark.slow
def test_export_into_the_current_folder(tmp_path, monkeypatch):
    checkpoint = _checkpoint(tmp_path, "conv_vae", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]})
    monkeypatch.chdir(tmp_path)
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", "."]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv_vae.pt", "decoder.onnx", "encoder.onnx"]


def test_the_log_head_runs_in_onnx_runtime_as_in_torch(tmp_path):
    from rgbd_vae_ros.stages import DepthStage
    from rgbd_vae_training.export import export_checkpoint

    torch.manual_seed(0)
    model = build_model("unet_depth", {"input_height": 24, "input_width": 32, "widths": [4, 8, 8],
                                       "attention_heads": 2, "head": "log"}).eval()
    with torch.no_grad():  # off its start (a constant), so the per-image scale and per-pixel shape both show
        torch.nn.init.normal_(model.scale.weight, std=0.5)
        torch.nn.init.normal_(model.output.weight, std=0.5)
    torch.save(checkpoint_payload(model), tmp_path / "log.pt")
    (row,) = export_checkpoint(tmp_path / "log.pt", tmp_path / "onnx")
    assert row["max_abs_error"] < 1e-5
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    stage = DepthStage.open(tmp_path / "onnx" / "depth.onnx", "onnxruntime", "cpu")
    torch_stage = DepthStage.open(tmp_path / "log.pt", "torch", "cpu")
    try:
        onnx_m, torch_m = stage(rgb), torch_stage(rgb)
    finally:
        stage.close()
        torch_stage.close()
    np.testing.assert_allclose(onnx_m, torch_m, rtol=1e-4)
    assert np.nanmax(onnx_m) - np.nanmin(onnx_m) > 0.01 and np.isfinite(onnx_m).mean() > 0.5  # not a constant


def _broken(tmp_path, weights_nan=False, max_depth_m=10.0):
    model = build_model("unet_depth", {"input_height": 32, "input_width": 32, "widths": [4, 8, 8], "attention_heads": 2})
    if weights_nan:
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    path = tmp_path / "depth.pt"
    torch.save(checkpoint_payload(model.eval(), config={"train": {"max_depth_m": max_depth_m}}), path)
    return path


@pytest.mark.parametrize("case, message", [
    ({"weights_nan": True}, "the depth's output 'depth' from torch is not finite"),
    ({"max_depth_m": 0.0}, "has train.max_depth_m 0.0; expected a positive number of metres"),
    ({"max_depth_m": float("nan")}, "has train.max_depth_m nan; expected a positive number of metres"),
])
@pytest.mark.slow
def test_an_export_whose_outputs_would_not_be_finite_fails_and_writes_nothing(tmp_path, capsys, case, message):
    checkpoint = _broken(tmp_path, **case)
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx")]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "max abs error nan" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth.pt"]


@pytest.mark.slow
def test_bench_backends_times_each_part_on_each_backend(tmp_path, capsys):
    out = tmp_path / "backends.json"
    assert cli(["bench", "backends", "--models", "fc_vae", "--runs", "3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert {(r["part"], r["backend"]) for r in rows} == {(p, b) for p in ("encoder", "decoder")
                                                         for b in ("torch", "onnxruntime")}
    assert all(r["gflops"] > 0 and r["median_ms"] > 0 and r["gflop_per_s"] > 0 for r in rows)
    assert "ONNX Runtime" in capsys.readouterr().out


def _parts_table(folder):
    tables = []
    for part in ("encoder", "decoder"):
        proto = onnx.load(str(folder / f"{part}.onnx"))
        tables.append(json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])["latent_quantiser"])
    assert tables[0] == tables[1]  # one table in both parts of one export
    return tables[0]


@pytest.mark.slow
def test_export_fits_the_latent_quantiser_on_the_training_split_of_data(tmp_path, capsys):
    """SPEC §4.3: the table is the per-dimension range of μ over the training split, in both parts'
    metadata; without --data it is fit on synthetic rooms and says so; bad data writes nothing."""
    import numpy as np

    from rgbd_vae_ros.latent import Quantiser
    from rgbd_vae_ros.stages import EncodeStage
    from rgbd_vae_training.data import open_dataset
    from rgbd_vae_training.synth.generate import write_nyu_raw

    torch.manual_seed(0)
    checkpoint = _checkpoint(tmp_path, "conv_vae", {"image_size": 32, "latent_dim": 8, "widths": [8, 16, 16]})
    write_nyu_raw(tmp_path / "data", scenes=6, frames=2, seed=3, width=64, height=48)
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx"),
                "--data", str(tmp_path / "data")]) == 0
    table = _parts_table(tmp_path / "onnx")
    train = open_dataset(tmp_path / "data", split="train")
    assert table["fit_on"].startswith("training split of") and table["frames"] == len(train) > 0
    quantiser = Quantiser.from_dict(table)
    stage = EncodeStage.open(checkpoint, "torch", "cpu")
    mus = np.stack([stage(f.rgb_u8, f.depth_m)[0] for f in train])
    stage.close()
    assert quantiser == Quantiser.fit(mus)
    low, high = mus.min(0), mus.max(0)  # a robust range: within the extremes, covering nearly all of it
    assert (quantiser.lo >= low - 5e-4).all() and (quantiser.hi <= high + 5e-4).all()
    assert (quantiser.hi - quantiser.lo >= 0.9 * (high - low)).all()

    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "synthetic")]) == 0
    assert "synthetic rooms" in _parts_table(tmp_path / "synthetic")["fit_on"]

    capsys.readouterr()
    assert cli(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "none"),
                "--data", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "cannot fit the latent quantiser" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()
