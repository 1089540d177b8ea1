"""SPEC §4 for every perception node: parameters checked at start and on change, models reloaded in
place or refused, /diagnostics levels and consistent counters, nothing wrong published as valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.nodes.parameters import defaults

RNG = np.random.default_rng(3)


def _header(i: int) -> Header:
    h = Header(frame_id="cam")
    h.stamp.sec = 2000 + i
    return h


def _rgb(i: int, h: int = 120, w: int = 160):
    return numpy_to_image(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8), "rgb8", _header(i))


def _run(executable: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name(executable)), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, sentence", [
    (["-p", "depth_encoding:=mono16"], "parameter depth_encoding 'mono16' is not one of 32FC1, 16UC1"),
    (["-p", "output_width:=64"], "output_width is 64 and output_height 0; set both"),
    (["-p", "fp16:=true", "-p", "device:=cpu"], "fp16 needs a CUDA device and device is cpu"),
    (["-p", "min_depth:=5.0", "-p", "max_depth:=2.0"], "min_depth 5 m is not below max_depth 2 m"),
    (["-p", "reliable_input:=sometimes"], "reliable_input 'sometimes' is not one of auto, true, false"),
    (["--params-file", "/nonexistent/params.yaml"], "cannot read the parameter file '/nonexistent/params.yaml'"),
    (["--params-file", "BROKEN"], "is not valid YAML (line 4): expected "),
])
@pytest.mark.slow
def test_an_invalid_start_value_ends_the_executable_with_one_sentence(args, sentence, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**:\n  ros__parameters:\n    max_depth: [1, 2\n")
    args = [str(broken) if a == "BROKEN" else a for a in args]
    done = _run("depth_estimator", "--ros-args", "-p", "autostart:=false", *args)
    assert done.returncode == 1, done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and sentence in err[0] and err[0].startswith("depth_estimator: error:"), done.stderr


@pytest.mark.slow
def test_help_describes_the_executable_and_starts_nothing():
    done = _run("rgbd_pipeline", "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert "usage: rgbd_pipeline" in done.stdout and "subscribes: image, depth, camera_info" in done.stdout
    assert "reliable_input (default 'auto', read-only)" in done.stdout and "decoded/depth" in done.stdout
    # and the outputs some depth models add
    assert "depth/mask (models with a validity mask)" in done.stdout and "depth/relative (relative" in done.stdout


def _node(cls, harness, **params):
    return harness.add(cls(context=harness.context, parameter_overrides=[Parameter(k, value=v)
                                                                         for k, v in params.items()]))


@pytest.mark.slow
def test_changes_apply_at_once_or_are_refused_with_the_reason_and_the_old_model_keeps_running(
        harness, exported, pipeline_models, tmp_path):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = _node(DepthEstimatorNode, harness, model=str(exported["unet_depth"][0]))
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, _rgb(0), lambda: depth)
    running = node.processor

    def refused(name, value, text):
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and text in result.reason, result.reason

    refused("fp16", True, "fp16 needs a CUDA device")  # this machine has none
    refused("output_width", 32, "set both")
    refused("model", str(tmp_path / "missing.onnx"), "the new setting cannot load (model file")
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx file")
    refused("model", str(tmp_path / "broken.onnx"), "the running model stays")
    assert node.processor is running and node.param("model") == str(exported["unet_depth"][0])
    assert harness.send(pub, _rgb(1), lambda: any(m.header.stamp.sec == 2001 for m in depth))

    result = node.set_parameters([Parameter("model", value=str(pipeline_models))])[0]  # another depth model
    assert result.successful, result.reason
    assert node.processor is not running and node.processor.describe()["model_depth"].startswith(str(pipeline_models))
    assert harness.send(pub, _rgb(2), lambda: any(m.header.stamp.sec == 2002 for m in depth))
    assert node.set_parameters([Parameter("sync_slop", value=0.5)])[0].successful
    assert node.assembler.slop_ns == 500_000_000  # at once, not at the next activation


def _status(diagnostics, name):
    statuses = [s for d in diagnostics for s in d.status if s.name.startswith(name)]
    return statuses[-1] if statuses else None


@pytest.mark.slow
def test_diagnostics_say_error_warn_and_ok_when_spec_section_4_says_so(harness, exported, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.lifecycle import TransitionCallbackReturn

    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode
    from sensor_msgs.msg import CompressedImage

    from rgbd_vae_ros.inference import open_backend
    from rgbd_vae_ros.latent import build_latent_message

    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    node = _node(RgbdDecoderNode, harness, model=str(tmp_path / "missing.onnx"), autostart=False)

    def level_is(level, text=""):
        return harness.wait_for(lambda: (s := _status(diagnostics, "rgbd_decoder")) is not None
                                and s.level == level and text in s.message)

    assert level_is(DiagnosticStatus.ERROR, "not configured")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert level_is(DiagnosticStatus.ERROR, "configure failed: model file")
    node.set_parameters([Parameter("model", value=str(exported["conv_vae"][0]))])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert level_is(DiagnosticStatus.ERROR, "configured, not active")
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert level_is(DiagnosticStatus.WARN, "no input for")  # nothing arrives for 5 s
    image = harness.listen(Image, "decoded/image")
    pub = harness.publisher(CompressedImage, "latent")
    backend = open_backend(exported["conv_vae"][0], "decoder", "onnxruntime", "cpu")
    backend.close()

    def latent(i, dim):
        return build_latent_message(_header(i), np.zeros(dim), codec="f32", depth="none", model=backend.info.model_id)

    assert harness.send(pub, latent(0, 16), lambda: image)
    assert level_is(DiagnosticStatus.OK, "running")
    assert harness.send(pub, latent(1, 12), lambda: node.counters.rejected)
    assert level_is(DiagnosticStatus.WARN, "rejected")
    values = {kv.key: kv.value for kv in _status(diagnostics, "rgbd_decoder").values}
    assert "checkpoint_sha256_decoder" in values and values["backend"] == "onnxruntime"
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    c = node.counters  # cumulative, and every frame that came in is accounted for
    assert c.frames_in == c.frames_out + c.dropped + c.rejected, (c.frames_in, c.frames_out, c.dropped, c.rejected)
    assert level_is(DiagnosticStatus.ERROR, "configured, not active")


def _log_until(args: list[str], text: str) -> str:
    """Start an executable and return the first log line holding ``text`` (30 s at most), then stop it."""
    import threading

    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found = []
    done = threading.Event()

    def read():
        for line in process.stdout:
            if text in line and not found:
                found.append(line)
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        done.wait(timeout=60)
    finally:
        process.send_signal(2)
        process.wait(timeout=30)
    assert found, f"no log line with {text!r}"
    return found[0]


@pytest.mark.slow
def test_a_node_that_cannot_configure_says_why():
    line = _log_until([str(Path(sys.executable).with_name("rgbd_decoder")), "--ros-args", "-p", "model:=/nonexistent"],
                      "configure failed")
    assert "model file '/nonexistent' does not exist" in line


@pytest.mark.slow
def test_an_active_node_logs_its_topics_backend_and_models_once_it_starts(exported):
    folder = exported["conv_vae"][0]
    line = _log_until([str(Path(sys.executable).with_name("rgbd_decoder")), "--ros-args", "-r", "__ns:=/robot1",
                       "-p", f"model:={folder}", "-p", "backend:=onnxruntime"], "active:")
    assert "inputs /robot1/latent" in line and "/robot1/decoded/image" in line
    assert "backend onnxruntime on cpu" in line and f"{folder}/decoder.onnx" in line


# What the processors compute: checked directly, deterministic ------------------------------------
def _params(model, **overrides):
    values = {**defaults(), "model": str(model), "backend": "onnxruntime", **overrides}
    return values.__getitem__


def test_depth_outside_min_and_max_depth_is_no_reading_never_clamped(exported):
    from rgbd_vae_ros.nodes.processors import DepthEstimator

    frame = Frame(_rgb(0))
    full = image_to_numpy(dict(DepthEstimator(_params(exported["unet_depth"][0]))(frame))["depth/image"])
    low, high = np.nanpercentile(full, 25), np.nanpercentile(full, 75)
    banded = DepthEstimator(_params(exported["unet_depth"][0], min_depth=float(low), max_depth=float(high)))
    depth = image_to_numpy(dict(banded(frame))["depth/image"])
    inside = (full >= low) & (full <= high)
    np.testing.assert_array_equal(depth[inside], full[inside])
    assert np.isnan(depth[~inside]).all() and (~inside).sum() > 0
    mm = DepthEstimator(_params(exported["unet_depth"][0], max_depth=float(high), depth_encoding="16UC1"))
    depth_mm = image_to_numpy(dict(mm(frame))["depth/image"])
    assert (depth_mm[full > high + 0.001] == 0).all() and depth_mm.max() <= round(high * 1000)


def test_a_depth_of_another_aspect_is_refused_by_the_encoder_and_replaced_by_the_estimate_in_the_pipeline(
        exported, pipeline_models):
    from rgbd_vae_ros.nodes.processors import Encoder, Pipeline
    from rgbd_vae_ros.stages import StageError

    rgb = _rgb(0)
    square = numpy_to_image(np.full((120, 120), 2.0, np.float32), "32FC1", _header(0))
    same_aspect = numpy_to_image(np.full((60, 80), 2.0, np.float32), "32FC1", _header(0))
    encoder = Encoder(_params(exported["conv_vae"][0]))
    with pytest.raises(StageError, match="depth is 120x120 and the image 160x120: another aspect"):
        encoder(Frame(rgb, depth=square))
    assert [topic for topic, _ in encoder(Frame(rgb, depth=same_aspect))] == ["latent"]
    pipeline = Pipeline(_params(pipeline_models))
    topics = [topic for topic, _ in pipeline(Frame(rgb, depth=square))]
    assert "latent" in topics and pipeline.counts["measured_depth_unused"] == 1
    assert "another aspect" in pipeline.reasons["measured_depth_unused"]


def test_compressed_colour_input_when_image_transport_is_compressed(harness, exported):
    from sensor_msgs.msg import CompressedImage

    from rgbd_vae_ros.conversion import rgb_to_compressed_msg
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = _node(DepthEstimatorNode, harness, model=str(exported["unet_depth"][0]), image_transport="compressed")
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(CompressedImage, "image/compressed")
    rgb = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert harness.send(pub, rgb_to_compressed_msg(rgb, "png", _header(0)), lambda: depth)
    assert (depth[0].width, depth[0].height, depth[0].header.stamp.sec) == (160, 120, 2000)
    broken = rgb_to_compressed_msg(rgb, "jpeg", _header(1))
    broken.data = bytes(broken.data)[:50]
    assert harness.send(pub, broken, lambda: node.counters.rejected >= 1)
    assert harness.send(pub, rgb_to_compressed_msg(rgb, "jpeg", _header(2)),
                        lambda: any(m.header.stamp.sec == 2002 for m in depth))
