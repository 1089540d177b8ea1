"""The nodes in one process with real rclpy: outputs, headers, encodings, bad input, lifecycle."""

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, latent_from_msg, latent_to_msg, numpy_to_image

RNG = np.random.default_rng(0)


def _header(i, frame="camera_rgb"):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 1000 + i, 5000
    return h


def _rgb(i, encoding="rgb8", h=120, w=160):
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    pixels = RNG.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    return numpy_to_image(pixels, encoding, _header(i))


def _node(cls, context, **params):
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return cls(context=context, parameter_overrides=overrides)


def test_depth_estimator_publishes_metres_at_the_input_size_with_the_input_header(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0])))
    depth = harness.listen(Image, "depth/image")
    info = harness.listen(CameraInfo, "depth/camera_info")
    pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    for i, encoding in enumerate(("rgb8", "bgr8", "rgba8", "bgra8", "mono8")):
        camera = CameraInfo(header=_header(i), width=320, height=240, k=[500.0, 0, 160, 0, 500, 120, 0, 0, 1])

        def sent_with_its_info(i=i, camera=camera):
            info_pub.publish(camera)  # the camera_info of the image's stamp
            return any(m.header.stamp.sec == 1000 + i for m in depth)

        assert harness.send(pub, _rgb(i, encoding), sent_with_its_info), encoding
    msg = depth[-1]
    assert (msg.encoding, msg.height, msg.width) == ("32FC1", 120, 160)
    assert msg.header.frame_id == "camera_rgb" and msg.header.stamp.sec == 1004
    values = image_to_numpy(msg)
    assert np.all((values >= 0) & (values <= 8.0))
    assert harness.wait_for(lambda: info) and info[-1].width == 160 and info[-1].k[0] == pytest.approx(250.0)
    assert {m.header.stamp.sec for m in info} <= {m.header.stamp.sec for m in depth}  # paired by stamp


def test_colorized_depth_only_while_watched_and_bad_settings_and_camera_info_are_refused(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0])))
    depth = harness.listen(Image, "depth/image")
    pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    assert harness.send(pub, _rgb(0), lambda: depth)
    colorized_pub = node.output_publishers["depth/colorized"]
    assert colorized_pub.get_subscription_count() == 0  # nobody watches: nothing is computed or sent
    colorized = harness.listen(Image, "depth/colorized")
    assert harness.send(pub, _rgb(1), lambda: colorized)
    assert (colorized[0].encoding, colorized[0].height, colorized[0].width) == ("rgb8", 120, 160)
    assert colorized[0].header.stamp.sec >= 1001

    result = node.set_parameters([Parameter("backend", value="tflite")])[0]
    assert not result.successful and "backend 'tflite' is not one of auto" in result.reason
    assert node.param("backend") == "auto"
    result = node.set_parameters([Parameter("max_depth", value=500.0)])[0]
    assert not result.successful  # outside the descriptor's range
    result = node.set_parameters([Parameter("autostart", value=False)])[0]
    assert not result.successful  # read-only

    # A camera_info that cannot describe the image is counted and not republished; the depth still goes out.
    info = harness.listen(CameraInfo, "depth/camera_info")
    bad_infos = [CameraInfo(width=0, height=0), CameraInfo(width=320, height=240, k=[0.0] * 9),
                 CameraInfo(width=320, height=240, k=[float("nan"), 0, 160, 0, 500, 120, 0, 0, 1]),
                 CameraInfo(width=300, height=300, k=[500.0, 0, 150, 0, 500, 150, 0, 0, 1])]  # another aspect
    for count, bad in enumerate(bad_infos, start=1):
        bad.header = _header(10 + count)
        assert harness.send(pub, _rgb(10 + count), lambda bad=bad, count=count: (info_pub.publish(bad), (
            node.processor.counts["camera_info_rejected"] >= count))[1])
    assert harness.wait_for(lambda: any(m.header.stamp.sec == 1000 + 10 + len(bad_infos) for m in depth))  # still sent
    assert not info


def test_depth_in_millimetres_when_asked(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0]),
                      depth_encoding="16UC1"))
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, _rgb(0), lambda: depth)
    assert depth[0].encoding == "16UC1" and image_to_numpy(depth[0]).max() <= 8000


def test_encoder_and_decoder_round_trip_through_the_latent_topic(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    folder = str(exported["conv_vae"][0])
    harness.add(_node(RgbdEncoderNode, harness.context, model=folder))
    harness.add(_node(RgbdDecoderNode, harness.context, model=folder, output_width=80, output_height=60))
    latent, image, depth = (harness.listen(Image, "latent"), harness.listen(Image, "decoded/image"),
                            harness.listen(Image, "decoded/depth"))
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    d = RNG.uniform(0.5, 5, (120, 160)).astype(np.float32)
    rgb = _rgb(0)

    def both():
        depth_pub.publish(numpy_to_image(d, "32FC1", _header(0, "camera_depth")))
        return image and depth

    assert harness.send(rgb_pub, rgb, both)
    assert (latent[0].encoding, latent[0].height, latent[0].width) == ("32FC1", 2, 16)
    assert latent[0].header.stamp.sec == 1000 and latent[0].header.frame_id == "camera_rgb"
    assert (image[0].encoding, image[0].height, image[0].width) == ("rgb8", 60, 80)
    assert depth[0].encoding == "32FC1" and depth[0].header.stamp.sec == 1000


def test_bad_input_is_counted_and_the_next_good_frame_is_processed(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode

    node = harness.add(_node(RgbdDecoderNode, harness.context, model=str(exported["conv_vae"][0])))
    image = harness.listen(Image, "decoded/image")
    pub = harness.publisher(Image, "latent")
    assert harness.send(pub, latent_to_msg(np.zeros(16), np.zeros(16), _header(8)), lambda: image)
    bad = [latent_to_msg(np.zeros(12), np.zeros(12), _header(0)),  # wrong width
           latent_to_msg(np.full(16, np.nan), np.zeros(16), _header(1)),
           numpy_to_image(np.zeros((3, 16), np.float32), "32FC1", _header(2)),
           Image(header=_header(3), height=2, width=16, encoding="32FC1", step=64, data=bytes(10))]  # short data
    for count, msg in enumerate(bad, start=1):
        assert harness.send(pub, msg, lambda: node.counters.rejected >= count)
    assert harness.send(pub, latent_to_msg(np.zeros(16), np.zeros(16), _header(9)),
                        lambda: any(m.header.stamp.sec == 1009 for m in image))
    assert node.counters.rejected >= len(bad)


def test_configure_fails_clearly_on_a_missing_model_and_succeeds_once_it_is_fixed(harness, exported, tmp_path):
    from rclpy.lifecycle import TransitionCallbackReturn

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(tmp_path / "missing.onnx"),
                             autostart=False))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    (tmp_path / "foreign.onnx").write_bytes(b"\x89PNG\r\n\x1a\n")
    node.set_parameters([Parameter("model", value=str(tmp_path / "foreign.onnx"))])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    node.set_parameters([Parameter("model", value=str(exported["unet_depth"][0]))])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, _rgb(0), lambda: depth)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    for i in range(5):
        pub.publish(_rgb(10 + i))
    assert not harness.wait_for(lambda: any(m.header.stamp.sec >= 1010 for m in depth), timeout_s=1.0)  # inactive
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.processor is None and node.output_publishers == {}


def test_pipeline_publishes_what_the_three_nodes_publish(harness, pipeline_models, exported):
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode
    from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage

    node = harness.add(_node(RgbdPipelineNode, harness.context, model=str(pipeline_models)))
    topics = {t: harness.listen(Image, t) for t in ("depth/image", "latent", "decoded/image", "decoded/depth")}
    pub = harness.publisher(Image, "image")
    msg = _rgb(0)
    assert harness.send(pub, msg, lambda: all(topics.values()))
    assert node.counters.frames_out >= 1
    rgb = image_to_numpy(msg)
    depth_m = DepthStage.open(pipeline_models)(rgb)
    mu, _ = EncodeStage.open(pipeline_models)(rgb, depth_m)
    decoded, _ = DecodeStage.open(pipeline_models)(mu)
    np.testing.assert_allclose(image_to_numpy(topics["depth/image"][0]), depth_m, atol=1e-5)
    np.testing.assert_allclose(latent_from_msg(topics["latent"][0])[0], mu, atol=1e-5)
    assert np.abs(image_to_numpy(topics["decoded/image"][0]).astype(int) - decoded).max() <= 1
    assert all(m[0].header.stamp.sec == 1000 for m in topics.values())


@pytest.mark.slow
def test_a_publisher_faster_than_the_model_causes_drops_not_a_growing_queue(harness, tmp_path):
    """A default-size unet_depth (about 0.2 s a frame here) fed at 50 Hz: stale frames are dropped,
    counted, reported in /diagnostics, and the latency stays near one inference time."""
    import torch
    from diagnostic_msgs.msg import DiagnosticArray

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode
    from rgbd_vae_training.export import export_checkpoint

    torch.save(checkpoint_payload(build_model("unet_depth").eval()), tmp_path / "slow.pt")
    export_checkpoint(tmp_path / "slow.pt", tmp_path)
    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(tmp_path / "depth.onnx")))
    depth = harness.listen(Image, "depth/image")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    pub = harness.publisher(Image, "image")
    warm_up = _rgb(0)
    warm_up.header.stamp = node.get_clock().now().to_msg()
    assert harness.send(pub, warm_up, lambda: depth, timeout_s=20)
    import time

    for i in range(1, 76):  # 1.5 s at 50 Hz
        msg = _rgb(i)
        now = node.get_clock().now().to_msg()
        msg.header.stamp = now  # stamped now, so latency is publish-to-output
        pub.publish(msg)
        time.sleep(0.02)
    assert harness.wait_for(lambda: node.counters.frames_in >= 40)
    time.sleep(1.0)
    c = node.counters
    assert node._slot.dropped > 10 and c.frames_out < c.frames_in
    median_ms, p95_ms = c.summary(c.latency_ms)
    assert p95_ms < 5000, (median_ms, p95_ms)  # bounded: no queue of 75 frames x 0.2 s (15 s)
    assert harness.wait_for(lambda: any(
        kv.key == "frames_dropped" and int(kv.value) > 10 for d in diagnostics for s in d.status for kv in s.values),
        timeout_s=30)
    keys = {kv.key for d in diagnostics for s in d.status for kv in s.values}
    assert {"backend", "device", "model_depth", "frames_in", "frames_out", "frames_rejected", "latency_median_ms",
            "latency_p95_ms", "stamp_age_median_ms", "checkpoint_sha256_depth"} <= keys


def test_bad_images_and_depth_are_counted_and_a_good_frame_follows(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    node = harness.add(_node(RgbdEncoderNode, harness.context, model=str(exported["conv_vae"][0]), sync_slop=0.01))
    latent = harness.listen(Image, "latent")
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")

    def pair(rgb, depth):
        rgb_pub.publish(rgb)
        depth_pub.publish(depth)

    good_depth = RNG.uniform(0.5, 5, (120, 160)).astype(np.float32)
    negative = good_depth.copy()
    negative[5, 5] = -2.0
    bad_frames = [
        (Image(header=_header(1), height=120, width=160, encoding="hsv8", step=480, data=bytes(57600)),
         numpy_to_image(good_depth, "32FC1", _header(1))),  # unknown encoding
        (Image(header=_header(2), height=120, width=160, encoding="rgb8", step=100, data=bytes(12000)),
         numpy_to_image(good_depth, "32FC1", _header(2))),  # step < width x 3
        (Image(header=_header(3), height=120, width=160, encoding="rgb8", step=480, data=bytes(100)),
         numpy_to_image(good_depth, "32FC1", _header(3))),  # short data
        (Image(header=_header(4), height=0, width=0, encoding="rgb8", step=0, data=b""),
         Image(header=_header(4), height=0, width=0, encoding="32FC1", step=0, data=b"")),  # 0x0
        (_rgb(5), numpy_to_image(negative, "32FC1", _header(5))),  # negative depth
    ]
    for count, (rgb, depth) in enumerate(bad_frames, start=1):
        assert harness.wait_for(lambda: (pair(rgb, depth), node.counters.rejected >= count)[1], timeout_s=10), count
    # never in sync: depth 0.5 s away from every image, so no image has a depth to encode with
    rejected = node.counters.rejected
    for i in range(15):
        rgb_pub.publish(_rgb(20 + i))
        far = _header(20 + i)
        far.stamp.nanosec = 500_005_000
        depth_pub.publish(numpy_to_image(good_depth, "32FC1", far))
        harness.wait_for(lambda: False, timeout_s=0.05)  # inputs keep only the last message
    assert harness.wait_for(lambda: node.counters.rejected > rejected)
    assert not latent
    good = (_rgb(40), numpy_to_image(good_depth, "32FC1", _header(40)))
    assert harness.wait_for(lambda: (pair(*good), any(m.header.stamp.sec == 1040 for m in latent))[1], timeout_s=10)
    assert node.counters.rejected >= len(bad_frames)


def test_with_use_sim_time_an_active_node_follows_clock_and_reports_latency_in_it(harness, exported):
    # The node's own subscriptions once shadowed rclpy's list, so /clock went unserved after activation.
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph_msgs.msg import Clock

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0]),
                             use_sim_time=True))
    depth = harness.listen(Image, "depth/image")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    clock = harness.publisher(Clock, "/clock")
    assert harness.send(clock, Clock(clock=_header(7).stamp), lambda: node.get_clock().now().nanoseconds > 0)
    assert node.get_clock().now().seconds_nanoseconds() == (1007, 5000)
    image = _rgb(7)
    assert harness.send(harness.publisher(Image, "image"), image, lambda: depth)

    def stamp_age_ms():
        values = [{kv.key: kv.value for kv in s.values} for d in diagnostics for s in d.status]
        return [float(v["stamp_age_median_ms"]) for v in values if v.get("frames_out") not in (None, "0")]

    assert harness.wait_for(lambda: stamp_age_ms(), timeout_s=30)  # diagnostics flow while simulated time stands still
    assert 0.0 <= stamp_age_ms()[-1] < 1.0  # the clock stood at the image's stamp
