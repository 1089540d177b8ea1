"""``rgbd-vae export`` and ``rgbd-vae bench backends`` from the command line."""

import json

import onnx
import torch

from rgbd_vae_ros.inference.metadata import METADATA_KEY
from rgbd_vae_ros.models import build_model
from rgbd_vae_ros.models.checkpoint import checkpoint_payload
from rgbd_vae_training.cli import main as cli


def _checkpoint(tmp_path, name, config):
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(build_model(name, config).eval()), path)
    return path


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


def test_bench_backends_times_each_part_on_each_backend(tmp_path, capsys):
    out = tmp_path / "backends.json"
    assert cli(["bench", "backends", "--models", "fc_vae", "--runs", "3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert {(r["part"], r["backend"]) for r in rows} == {(p, b) for p in ("encoder", "decoder")
                                                         for b in ("torch", "onnxruntime")}
    assert all(r["gflops"] > 0 and r["median_ms"] > 0 and r["gflop_per_s"] > 0 for r in rows)
    assert "ONNX Runtime" in capsys.readouterr().out
