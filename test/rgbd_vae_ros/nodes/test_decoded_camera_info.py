"""decoded/camera_info (SPEC §4.2): with each decoding, the frame's camera at the decoded size. The
encoder resizes each axis of the image to the model's input, so the intrinsics scale per axis."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import numpy_to_image
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.latent import build_latent_message
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_ros.nodes.processors import Decoder, Pipeline

FX, FY, CX, CY = 500.0, 505.0, 161.5, 118.0  # a 320x240 calibration


def _header(sec: int) -> Header:
    header = Header(frame_id="camera_rgb_optical_frame")
    header.stamp.sec = sec
    return header


def _info(sec: int, width: int = 320, height: int = 240, k=None) -> CameraInfo:
    return CameraInfo(header=_header(sec), width=width, height=height,
                      k=k or [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0],
                      p=[FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0])


def _expected_k(width: int, height: int) -> list[float]:
    sx, sy = width / 320, height / 240
    return [FX * sx, 0.0, CX * sx, 0.0, FY * sy, CY * sy, 0.0, 0.0, 1.0]


def _processor(cls, models, **values):
    return cls({**defaults(), "model": str(models), "backend": "onnxruntime", **values}.__getitem__)


@pytest.mark.slow
@pytest.mark.parametrize("size", [None, (64, 48)])
def test_the_pipeline_publishes_the_camera_at_the_decoded_size(pipeline_models, size):
    values = {} if size is None else {"output_width": size[0], "output_height": size[1]}
    pipeline = _processor(Pipeline, pipeline_models, **values)
    try:
        rgb = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
        frame = Frame(numpy_to_image(rgb, "rgb8", _header(5)), camera_info=_info(5))  # same aspect, twice the size
        outputs = dict(pipeline(frame))
        decoded, info = outputs["decoded/image"], outputs["decoded/camera_info"]
        assert (info.width, info.height) == (decoded.width, decoded.height)
        assert size is None or (decoded.width, decoded.height) == size
        np.testing.assert_allclose(info.k, _expected_k(decoded.width, decoded.height), rtol=1e-12)
        assert info.header.stamp.sec == 5 and info.header.frame_id == decoded.header.frame_id
        # a camera_info of another aspect describes no pixel of this image: no decoded camera either
        outputs = dict(pipeline(Frame(numpy_to_image(rgb, "rgb8", _header(6)), camera_info=_info(6, 320, 320))))
        assert "decoded/image" in outputs and "decoded/camera_info" not in outputs
        assert pipeline.counts["camera_info_rejected"] == 1
    finally:
        pipeline.close()


@pytest.mark.slow
def test_the_decoder_pairs_the_camera_info_of_the_latents_stamp_and_refuses_a_bad_one(pipeline_models):
    decoder = _processor(Decoder, pipeline_models)
    try:
        latent = build_latent_message(_header(7), np.zeros(decoder.decoder.latent_dim), codec="f32", depth="measured",
                                      model=decoder.model_id)
        assert "decoded/camera_info" not in dict(decoder(Frame(latent)))  # no camera: none
        outputs = dict(decoder(Frame(latent, camera_info=_info(7))))
        info, decoded = outputs["decoded/camera_info"], outputs["decoded/image"]
        np.testing.assert_allclose(info.k, _expected_k(decoded.width, decoded.height), rtol=1e-12)
        outputs = dict(decoder(Frame(latent, camera_info=_info(7, k=[0.0] * 9))))
        assert "decoded/image" in outputs and "decoded/camera_info" not in outputs
        assert "K is not finite" in decoder.reasons["camera_info_rejected"]
    finally:
        decoder.close()


@pytest.mark.slow
def test_the_decoder_node_publishes_decoded_camera_info_with_the_camera_info_topic(harness, pipeline_models):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode

    node = harness.add(RgbdDecoderNode(context=harness.context, namespace="/decoded_info", parameter_overrides=[
        Parameter("model", value=str(pipeline_models)), Parameter("reliable_input", value="true")]))
    assert harness.wait_for(lambda: node._active)
    infos = harness.listen(CameraInfo, "/decoded_info/decoded/camera_info")
    images = harness.listen(Image, "/decoded_info/decoded/image")
    info_pub = harness.publisher(CameraInfo, "/decoded_info/camera_info")
    latent_pub = harness.publisher(CompressedImage, "/decoded_info/latent")
    model = node.processor.model_id
    latent = build_latent_message(_header(9), np.zeros(node.processor.decoder.latent_dim), codec="f32",
                                  depth="measured", model=model)
    camera = _info(9)  # sent again with each poll: the latent may overtake it (another topic)
    assert harness.send(latent_pub, latent,
                        lambda: (info_pub.publish(camera), any(m.header.stamp.sec == 9 for m in infos))[1])
    info = next(m for m in infos if m.header.stamp.sec == 9)
    decoded = next(m for m in images if m.header.stamp.sec == 9)
    np.testing.assert_allclose(info.k, _expected_k(decoded.width, decoded.height), rtol=1e-12)
