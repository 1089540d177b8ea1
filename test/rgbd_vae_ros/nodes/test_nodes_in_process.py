"""The nodes in one process with real rclpy: outputs, headers, encodings, bad input, lifecycle."""

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image
from rgbd_vae_ros.latent import LatentFormat, build_latent_message, parse_info_message, parse_latent_message

RNG = np.random.default_rng(0)


def _header(i, frame="camera_rgb"):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 1000 + i, 5000
    return h


def _rgb(i, encoding="rgb8", h=120, w=160):
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    pixels = RNG.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    return numpy_to_image(pixels, encoding, _header(i))


def _model_id(folder) -> str:
    from rgbd_vae_ros.inference import open_backend

    backend = open_backend(folder, "decoder", "onnxruntime", "cpu")
    backend.close()
    return backend.info.model_id


def _latent(i, mu, model, codec="f32"):
    """A latent as an encoder of ``model`` sends it (raw floats: NaN passes too)."""
    mu = np.asarray(mu, np.float32)
    return CompressedImage(header=_header(i), format=str(LatentFormat(mu.shape[0], codec, "measured", model)),
                           data=mu.astype("<f4").tobytes())


def _node(cls, context, **params):
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return cls(context=context, parameter_overrides=overrides)


@pytest.mark.slow
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


@pytest.mark.slow
def test_colorized_depth_only_while_watched_and_bad_settings_and_camera_info_are_refused(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0])))
    depth = harness.listen(Image, "depth/image")
    pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    assert harness.send(pub, _rgb(0), lambda: depth)
    colorized_pub = node.output_publishers["depth/colorized"]
    assert colorized_pub.get_subscription_count() == 0  # nobody watches: nothing is computed or sent
    colorized = harness.listen(Image, "depth/colorized")
    # frame 1's colorized depth (a repeat of frame 0 still in flight when the reader joined may come first)
    assert harness.send(pub, _rgb(1), lambda: any(m.header.stamp.sec >= 1001 for m in colorized))
    watched = next(m for m in colorized if m.header.stamp.sec >= 1001)
    assert (watched.encoding, watched.height, watched.width) == ("rgb8", 120, 160)

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


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_points_only_while_watched_and_equal_to_the_published_depth_back_projected(harness, exported, encoding):
    from sensor_msgs.msg import PointCloud2

    from rgbd_vae_ros.conversion import depth_msg_to_m
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode
    from rgbd_vae_ros.points import points_from_message

    node = harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0]),
                             depth_encoding=encoding))
    depth, info = harness.listen(Image, "depth/image"), harness.listen(CameraInfo, "depth/camera_info")
    pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")

    def camera_info(i):  # for a 320x240 image of the same aspect: the node scales it to 160x120
        return CameraInfo(header=_header(i), width=320, height=240, k=[500.0, 0, 161.5, 0, 505.0, 118.0, 0, 0, 1])

    assert harness.send(pub, _rgb(0), lambda: (info_pub.publish(camera_info(0)), depth)[1])
    assert node.output_publishers["depth/points"].get_subscription_count() == 0  # nobody reads: none computed
    points = harness.listen(PointCloud2, "depth/points")
    assert harness.send(pub, _rgb(1), lambda: (info_pub.publish(camera_info(1)),
                                               any(m.header.stamp.sec == 1001 for m in points))[1])
    cloud = next(m for m in points if m.header.stamp.sec == 1001)
    published = next(m for m in depth if m.header.stamp.sec == 1001)
    k = next(m for m in info if m.header.stamp.sec == 1001).k
    assert cloud.header.frame_id == published.header.frame_id and cloud.height == 1
    # Independent back-projection of what depth/image and depth/camera_info say, row-major over valid pixels.
    z = depth_msg_to_m(published)
    rows, cols = np.nonzero(np.isfinite(z) & (z > 0))
    zs = z[rows, cols]
    expected = np.stack([(cols - k[2]) * zs / k[0], (rows - k[5]) * zs / k[4], zs], axis=1)
    assert np.allclose(points_from_message(cloud), expected, atol=1e-5)


def test_depth_in_millimetres_when_asked(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    harness.add(_node(DepthEstimatorNode, harness.context, model=str(exported["unet_depth"][0]),
                      depth_encoding="16UC1"))
    depth = harness.listen(Image, "depth/image")
    pub = harness.publisher(Image, "image")
    assert harness.send(pub, _rgb(0), lambda: depth)
    assert depth[0].encoding == "16UC1" and image_to_numpy(depth[0]).max() <= 8000


@pytest.mark.slow
def test_encoder_and_decoder_round_trip_through_the_latent_topic(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    folder = str(exported["conv_vae"][0])
    harness.add(_node(RgbdEncoderNode, harness.context, model=folder))
    harness.add(_node(RgbdDecoderNode, harness.context, model=folder, output_width=80, output_height=60))
    latent, image, depth = (harness.listen(CompressedImage, "latent"), harness.listen(Image, "decoded/image"),
                            harness.listen(Image, "decoded/depth"))
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    d = RNG.uniform(0.5, 5, (120, 160)).astype(np.float32)
    rgb = _rgb(0)

    def both():
        depth_pub.publish(numpy_to_image(d, "32FC1", _header(0, "camera_depth")))
        return image and depth

    assert harness.send(rgb_pub, rgb, both)
    assert latent[0].format == f"rgbd_vae_latent; v=1; dim=16; codec=q8; depth=measured; model={_model_id(folder)}"
    assert len(latent[0].data) == 16  # q8, the default: one byte per dimension
    assert latent[0].header.stamp.sec == 1000 and latent[0].header.frame_id == "camera_rgb"
    assert (image[0].encoding, image[0].height, image[0].width) == ("rgb8", 60, 80)
    assert depth[0].encoding == "32FC1" and depth[0].header.stamp.sec == 1000


def test_bad_input_is_counted_and_the_next_good_frame_is_processed(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode

    node = harness.add(_node(RgbdDecoderNode, harness.context, model=str(exported["conv_vae"][0])))
    image = harness.listen(Image, "decoded/image")
    model = _model_id(exported["conv_vae"][0])
    pub = harness.publisher(CompressedImage, "latent")
    assert harness.send(pub, _latent(8, np.zeros(16), model), lambda: image)
    bad = [_latent(0, np.zeros(12), model),  # another dim
           _latent(1, np.full(16, np.nan), model),
           CompressedImage(header=_header(2), format="jpeg", data=bytes(64)),
           CompressedImage(header=_header(3), format=_latent(3, np.zeros(16), model).format, data=bytes(10))]
    for count, msg in enumerate(bad, start=1):
        assert harness.send(pub, msg, lambda: node.counters.rejected >= count)
    assert harness.send(pub, _latent(9, np.zeros(16), model),
                        lambda: any(m.header.stamp.sec == 1009 for m in image))
    assert node.counters.rejected >= len(bad)


@pytest.mark.slow
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


@pytest.mark.slow
def test_pipeline_publishes_what_the_three_nodes_publish(harness, pipeline_models, exported):
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode
    from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage

    node = harness.add(_node(RgbdPipelineNode, harness.context, model=str(pipeline_models)))
    topics = {t: harness.listen(Image, t) for t in ("depth/image", "decoded/image", "decoded/depth")}
    topics["latent"] = harness.listen(CompressedImage, "latent")
    pub = harness.publisher(Image, "image")
    msg = _rgb(0)
    assert harness.send(pub, msg, lambda: all(topics.values()))
    assert node.counters.frames_out >= 1
    rgb = image_to_numpy(msg)
    depth_m = DepthStage.open(pipeline_models)(rgb)
    encoder = EncodeStage.open(pipeline_models)
    mu, _ = encoder(rgb, depth_m)
    np.testing.assert_allclose(image_to_numpy(topics["depth/image"][0]), depth_m, atol=1e-5)
    # the default codec: q8 codes of the encoder's mu over the export's table, and the decoded
    # image is what a receiver decodes from those codes
    from rgbd_vae_ros.nodes.processors import quantiser_of

    quantiser = quantiser_of(encoder.info)
    fmt, sent, _ = parse_latent_message(topics["latent"][0], quantiser)
    assert (fmt.codec, fmt.depth, fmt.model) == ("q8", "estimated", encoder.info.model_id)
    step = (quantiser.hi - quantiser.lo) / 256
    assert (np.abs(sent - np.clip(mu, quantiser.lo, quantiser.hi)) <= step / 2 + 1e-5).all()
    decoded, _ = DecodeStage.open(pipeline_models)(sent)
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


@pytest.mark.slow
def test_bad_images_and_depth_are_counted_and_a_good_frame_follows(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    node = harness.add(_node(RgbdEncoderNode, harness.context, model=str(exported["conv_vae"][0]), sync_slop=0.01))
    latent = harness.listen(CompressedImage, "latent")
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
        assert harness.wait_for(lambda: (pair(rgb, depth), node.counters.rejected >= count)[1], timeout_s=30), count
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
    assert harness.wait_for(lambda: (pair(*good), any(m.header.stamp.sec == 1040 for m in latent))[1], timeout_s=30)
    assert node.counters.rejected >= len(bad_frames)


@pytest.mark.slow
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


def _latched_listener(harness, topic):
    """A transient-local subscription, as a consumer of latent/info makes it."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    received = []
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    harness.probe.create_subscription(CompressedImage, topic, received.append, qos)
    return received


def test_latent_info_reaches_a_subscriber_that_joins_later_and_follows_a_model_reload(harness, exported):
    from rgbd_vae_ros.inference import open_backend
    from rgbd_vae_ros.nodes.processors import quantiser_of
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    conv, vgg = str(exported["conv_vae"][0]), str(exported["vgg_vae"][0])
    node = harness.add(_node(RgbdEncoderNode, harness.context, model=conv))
    assert harness.wait_for(lambda: node._active and node._latched_model is not None)
    late = _latched_listener(harness, "latent/info")  # joins after the one message went out
    assert harness.wait_for(lambda: late)
    model, quantiser = parse_info_message(late[0])
    backend = open_backend(conv, "encoder", "onnxruntime", "cpu")
    backend.close()
    assert model == backend.info.model_id and quantiser == quantiser_of(backend.info)
    assert node.set_parameters([Parameter("model", value=vgg)])[0].successful
    later = _latched_listener(harness, "latent/info")
    assert harness.wait_for(lambda: any(parse_info_message(m)[0] == _model_id(vgg) for m in later))
    assert harness.wait_for(lambda: any(parse_info_message(m)[0] == _model_id(vgg) for m in late))
    assert _model_id(vgg) != model


@pytest.mark.slow
def test_a_decoder_refuses_another_models_latents_on_diagnostics_and_decodes_its_own(harness, exported):
    """Encoder (conv_vae) -> decoder of another model of the same dim (vgg_vae): refused and counted
    with the reason on /diagnostics; the decoder reloaded with the encoder's model decodes them."""
    from diagnostic_msgs.msg import DiagnosticArray

    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    conv, vgg = str(exported["conv_vae"][0]), str(exported["vgg_vae"][0])
    harness.add(_node(RgbdEncoderNode, harness.context, model=conv, latent_codec="q4"))
    decoder = harness.add(_node(RgbdDecoderNode, harness.context, model=vgg))
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    image = harness.listen(Image, "decoded/image")
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    d = RNG.uniform(0.5, 5, (120, 160)).astype(np.float32)

    def frame(i):
        def send():
            depth_pub.publish(numpy_to_image(d, "32FC1", _header(i, "camera_depth")))
            return decoder.counters.rejected > 0
        return send

    assert harness.send(rgb_pub, _rgb(0), frame(0))
    assert not image

    def says_refused():
        for array in diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if (status.name.startswith("rgbd_decoder") and int(values.get("frames_rejected", 0)) >= 1
                        and f"latent of model {_model_id(conv)}; this decoder is model {_model_id(vgg)}"
                        in status.message):
                    return True
        return False

    assert harness.wait_for(says_refused)
    c = decoder.counters
    assert harness.wait_for(lambda: c.frames_in == c.frames_out + c.dropped + c.rejected + decoder._slot.dropped)
    assert decoder.set_parameters([Parameter("model", value=conv)])[0].successful
    assert harness.send(rgb_pub, _rgb(1), lambda: (frame(1)(), any(m.header.stamp.sec == 1001 for m in image))[1])
