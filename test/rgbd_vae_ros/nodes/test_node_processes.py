"""The executables as separate processes through their console scripts: outputs over DDS and a
clean exit on Ctrl-C."""

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image


def _start(executable, *params):
    args = [str(Path(sys.executable).with_name(executable)), "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process):
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    return process.returncode, out + err


@pytest.mark.slow
def test_rgbd_pipeline_process_serves_every_output_and_stops_cleanly_on_ctrl_c(harness, pipeline_models):
    process = _start("rgbd_pipeline", f"model:={pipeline_models}", "output_width:=64", "output_height:=48")
    try:
        topics = {t: harness.listen(Image, t) for t in ("depth/image", "decoded/image", "decoded/depth")}
        topics["latent"] = harness.listen(CompressedImage, "latent")
        pub = harness.publisher(Image, "image")
        header = Header(frame_id="cam")
        header.stamp.sec = 42
        msg = numpy_to_image(np.full((120, 160, 3), 90, np.uint8), "rgb8", header)
        assert harness.send(pub, msg, lambda: all(topics.values()), timeout_s=30), process.stderr
        assert image_to_numpy(topics["depth/image"][0]).shape == (120, 160)
        assert (topics["decoded/image"][0].width, topics["decoded/image"][0].height) == (64, 48)
        assert all(m[0].header.stamp.sec == 42 and m[0].header.frame_id == "cam" for m in topics.values())
    finally:
        code, output = _stop(process)
    assert code == 0, output
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_node_without_a_model_stays_up_and_says_why(harness):
    process = _start("depth_estimator", "model:=/nonexistent/depth.onnx")
    try:
        from diagnostic_msgs.msg import DiagnosticArray

        diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
        assert harness.wait_for(lambda: any(s.name.startswith("depth_estimator") for d in diagnostics
                                            for s in d.status), timeout_s=20)
        assert process.poll() is None  # still running, unconfigured
    finally:
        code, output = _stop(process)
    assert "configure failed: model file '/nonexistent/depth.onnx' does not exist" in output
    assert code == 0 and "Traceback" not in output


@pytest.mark.slow
def test_encoder_and_decoder_processes_chain_through_the_latent_topic(harness, exported):
    folder = exported["conv_vae"][0]
    encoder = _start("rgbd_encoder", f"model:={folder}", "sync_slop:=0.05")
    decoder = _start("rgbd_decoder", f"model:={folder}")
    try:
        latent, decoded = harness.listen(CompressedImage, "latent"), harness.listen(Image, "decoded/depth")
        rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
        header = Header(frame_id="cam")
        header.stamp.sec = 7
        rgb = numpy_to_image(np.full((60, 80, 3), 120, np.uint8), "rgb8", header)
        depth = numpy_to_image(np.full((60, 80), 2.0, np.float32), "32FC1", header)

        def both_sent():
            depth_pub.publish(depth)
            return bool(latent and decoded)

        assert harness.send(rgb_pub, rgb, both_sent, timeout_s=30)
        assert latent[0].format.startswith("rgbd_vae_latent; v=1; dim=16; codec=q8; depth=measured; model=")
        assert len(latent[0].data) == 16 and decoded[0].header.stamp.sec == 7  # q8, the default: a byte a dim
    finally:
        results = [_stop(p) for p in (encoder, decoder)]
    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
