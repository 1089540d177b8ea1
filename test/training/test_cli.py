"""The rgbd-vae command line: help, exit status convention, one-sentence errors (SPEC §7.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rgbd_vae_training.cli import COMMANDS, main

RGBD_VAE = Path(sys.executable).with_name("rgbd-vae")


def run_cli(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """The command as a user runs it; the limit only guards against a hang (a loaded machine is slow)."""
    return subprocess.run([str(RGBD_VAE), *args], capture_output=True, text=True, timeout=timeout_s)


def test_help_lists_every_command_and_exits_0():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rgbd-vae " + command in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["no-such-command"], ["bench"], ["bench", "conversion", "--runs", "many"]])
def test_bad_arguments_exit_2_with_one_sentence(args):
    result = run_cli(*args)
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("rgbd-vae") and "error:" in last_line and last_line.endswith(".")
    assert "Traceback" not in result.stderr


def test_other_errors_exit_1_with_one_sentence_and_no_traceback():
    result = run_cli("bench", "conversion", "--runs", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == "rgbd-vae bench: error: --runs is 0; expected at least 1."


@pytest.mark.slow
@pytest.mark.parametrize("task,config,cache", [("depth", "tiny_depth", "true"), ("vae", "tiny_vae", "false")])
def test_a_bad_frame_read_in_a_loader_worker_is_one_sentence_naming_the_file(nyu_raw_dir, tmp_path, task, config,
                                                                              cache):
    """A frame that a DataLoader worker cannot read (training with train.num_workers: the preload of
    train.cache_frames, or an epoch's workers) is the reader's own sentence, not the worker's traceback.
    (A depth model without the cache reads the frames here first, for its training geometry.)"""
    import shutil

    data = tmp_path / "nyu_raw"
    shutil.copytree(nyu_raw_dir, data)
    # each room's last depth frame cut short: the first frame, which the command checks itself before
    # training, stays whole, so a worker is the first to read a broken one
    broken = [sorted(room.glob("d-*.pgm"))[-1] for room in sorted(data.glob("synth_room_*"))]
    for path in broken:
        path.write_bytes(path.read_bytes()[:20])
    result = run_cli("train", task, "--config", config, "--data", str(data), "--out", str(tmp_path / "run"),
                     "--no-progress", "train.epochs=1", "train.max_steps=0", "train.batch_size=2",
                     "train.num_workers=2", f"train.cache_frames={cache}", "train.validate=false")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert any(message.startswith(f"rgbd-vae train: error: {str(path)!r} is truncated: ") for path in broken), message
    assert message.endswith(".")
    assert "\n" not in message and "Traceback" not in message and "DataLoader" not in message


@pytest.mark.slow
def test_bench_conversion_reports_every_case_and_writes_json(tmp_path):
    out = tmp_path / "bench" / "conversion.json"
    result = run_cli("bench", "conversion", "--runs", "5", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    names = [row["name"] for row in report["results"]]
    assert "rgb8 numpy -> Image" in names and "32FC1 Image -> numpy (copy)" in names
    for row in report["results"]:
        assert 0 < row["min_ms"] <= row["median_ms"] <= row["p95_ms"]
        assert row["name"] in result.stdout
    assert not list(out.parent.glob(".*.tmp")), "a temporary file was left behind"


@pytest.mark.slow
def test_bench_training_reports_samples_per_second_per_model(tmp_path):
    out = tmp_path / "training.json"
    result = run_cli("bench", "training", "--models", "fc_vae", "cvae", "--runs", "2", "--batch", "4", "--device", "cpu",
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["results"]
    # on the CPU each model in the layout train uses (channels last) and, beside it, contiguous
    assert [(r["model"], r["layout"], r["trains_in"]) for r in rows] == [
        ("fc_vae", "channels_last", True), ("fc_vae", "contiguous", False),
        ("cvae", "channels_last", True), ("cvae", "contiguous", False)]
    assert all(r["samples_per_s"] > 0 and r["batch"] == 4 for r in rows)
    assert "fc_vae" in result.stdout and "samples/s" in result.stdout
    assert "fc_vae: a step in channels_last (as train runs it) takes" in result.stdout
    # a model whose loss is its own (mff_depth's mask term) is timed with that loss
    from rgbd_vae_training.bench.training import bench_training

    rows = bench_training(["mff_depth"], batch=1, steps=1, device="cpu")
    assert [(r["model"], r["layout"]) for r in rows] == [("mff_depth", "channels_last"), ("mff_depth", "contiguous")]
    assert all(r["step_ms"] > 0 for r in rows)
    bad = run_cli("bench", "training", "--models", "nope")
    assert bad.returncode == 1 and "unknown model 'nope'" in bad.stderr
    for args, message in ((["--batch", "0"], "--batch is 0; expected at least 1"),
                          (["--seconds", "-1"], "--seconds is -1; expected more than 0")):
        bad = run_cli("bench", "training", *args)
        assert bad.returncode == 1 and message in bad.stderr


def test_demo_runs_the_whole_system_and_writes_its_report(tmp_path, tiny_depth_checkpoint, tiny_vae_checkpoint):
    import shutil

    from rgbd_vae_ros.bags import BagReader

    out = tmp_path / "demo_out"
    for task, checkpoint in (("depth", tiny_depth_checkpoint), ("vae", tiny_vae_checkpoint)):
        (out / "models" / task).mkdir(parents=True)
        shutil.copy(checkpoint, out / "models" / task / "checkpoint.pt")
    # the tests' shorter VAE run (test/conftest.py), reused as the demo reuses a finished run of its config
    result = run_cli("demo", "--out", str(out), "--vae-config", str(Path(tiny_vae_checkpoint).parent / "config.yaml"),
                     timeout_s=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("demo: reusing") == 2 and "training tiny" not in result.stdout
    evaluation = json.loads((out / "eval" / "depth" / "metrics.json").read_text())
    assert evaluation["depth"]["abs_rel"] < evaluation["mean_depth_baseline"]["abs_rel"]
    onnx_files = sorted(p.name for p in (out / "models" / "onnx").glob("*.onnx"))
    assert onnx_files == ["decoder.onnx", "depth.onnx", "encoder.onnx"]
    with BagReader(out / "bag") as bag:
        assert bag.topics["/camera/rgb/image_raw"].count == 48
    with BagReader(out / "outputs") as outputs:
        assert {"/rgbd_vae/depth/image", "/rgbd_vae/latent", "/rgbd_vae/latent/info", "/rgbd_vae/decoded/image",
                "/rgbd_vae/decoded/depth", "/diagnostics"} <= set(outputs.topics)
        assert outputs.topics["/rgbd_vae/latent"].msgtype == "sensor_msgs/msg/CompressedImage"
    with BagReader(out / "processed") as processed:
        assert processed.topics["/rgbd_vae/decoded/depth"].count == 48
    metrics = json.loads((out / "metrics.json").read_text())
    print(json.dumps(metrics["frames"]), json.dumps(metrics["latency_ms"]))
    # Quality over every frame (bag process, deterministic); the live replay only has to answer.
    assert metrics["frames"]["images"] == metrics["frames"]["processed"] == 48
    assert metrics["depth"]["estimated"]["images"] == 48
    assert metrics["frames"]["live"]["images_played"] == 48 and metrics["frames"]["live"]["decoded"] >= 1
    assert metrics["depth"]["estimated"]["abs_rel"] < metrics["depth"]["mean_depth_baseline"]["abs_rel"]
    # the decoded camera frames (raw layout: registered depth with its border and holes) beat the mean
    # training image by 3 dB: this 300-step VAE by 3.9 dB (17.4 against 13.5); the 9000-step one whose
    # raw frames had codes the decoder never learnt (docs/benchmarks.md, "Raw frames") by 2.1 dB or less
    reconstruction = metrics["reconstruction"]
    assert reconstruction["rgb_psnr_db"] > reconstruction["mean_image_baseline"]["rgb_psnr_db"] + 3 > 13
    # the latents of every frame: the default codec (q8: one byte per dimension), the measured depth
    # of the bag encoded, and the quantiser table fit on the training rooms
    latent = metrics["latent"]
    assert latent["frames"] == 48 and latent["codec"] == "q8" and latent["data_bytes"] == latent["dim"]
    assert latent["message_bytes"] > latent["data_bytes"] and sum(latent["depth"].values()) == 48
    from rgbd_vae_ros.inference import open_backend

    encoder = open_backend(out / "models" / "onnx", "encoder", "onnxruntime", "cpu")
    encoder.close()
    assert "training split of" in encoder.info.latent_quantiser["fit_on"] and latent["model"] == encoder.info.model_id
    assert metrics["latency_ms"]["end_to_end_median"] > 0 and metrics["backend"] == "onnxruntime"
    from PIL import Image

    with Image.open(out / "report.png") as report:
        assert report.width > 5 * 100 and report.height > 4 * 100


@pytest.mark.slow
def test_bench_pipeline_refuses_a_bag_without_an_image_sequence(tmp_path):
    from rgbd_vae_ros.bags import write_bag

    with write_bag(tmp_path / "empty"):
        pass
    result = run_cli("bench", "pipeline", "--bag", str(tmp_path / "empty"), "--seconds", "1")
    assert result.returncode == 1
    assert "has no /camera/rgb/image_raw messages; expected a sequence written by rgbd-vae bag" in result.stderr
    missing = run_cli("bench", "pipeline", "--bag", str(tmp_path / "nope"), "--seconds", "1")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
