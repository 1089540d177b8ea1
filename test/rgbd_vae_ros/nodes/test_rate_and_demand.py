"""max_rate skips frames by stamp before any work (counted apart), and outputs nobody reads are not
computed: the decoder does not decode, the pipeline neither encodes nor decodes (SPEC §4.2, §4.4)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import numpy_to_image
from rgbd_vae_ros.frames import Frame
from rgbd_vae_ros.latent import LatentFormat
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_ros.nodes.processors import LIVE_ONLY, ON_DEMAND, Pipeline
from rgbd_vae_ros.nodes.rate import RateLimit

RNG = np.random.default_rng(17)
CAMERA_NS = 33_333_333  # a 30 Hz camera
START_NS = 1_700_000_000 * 10**9


def _header(stamp_ns: int) -> Header:
    header = Header(frame_id="camera_rgb")
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 10**9)
    return header


def _rgb(stamp_ns: int, height: int = 120, width: int = 160) -> Image:
    return numpy_to_image(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8), "rgb8", _header(stamp_ns))


def _taken(limit: RateLimit, stamps_ns) -> list[int]:
    return [i for i, stamp in enumerate(stamps_ns) if limit.take(stamp)]


class _Calls:
    """Counts the runs of a real stage's backend (the model still runs)."""

    def __init__(self, stage):
        self.count, self._run = 0, stage.backend.run
        stage.backend.run = self

    def __call__(self, inputs):
        self.count += 1
        return self._run(inputs)


# --- the rate limit alone: deterministic, by stamp -------------------------------------------------
def test_a_30_hz_camera_under_max_rate_15_keeps_every_other_frame_and_counts_the_rest():
    limit = RateLimit(15.0)
    assert _taken(limit, [START_NS + i * CAMERA_NS for i in range(12)]) == [0, 2, 4, 6, 8, 10]
    assert limit.skipped == 6


def test_stamp_jitter_does_not_lower_the_rate_and_a_long_run_stays_within_max_rate():
    jitter = np.random.default_rng(0).integers(-2_000_000, 2_000_001, 300)  # +-2 ms
    stamps = [START_NS + i * CAMERA_NS + int(j) for i, j in enumerate(jitter)]
    taken = _taken(RateLimit(10.0), stamps)
    assert taken == list(range(0, 300, 3))  # 30 Hz -> 10 Hz exactly, no slot lost to jitter
    taken = _taken(RateLimit(12.0), stamps)  # not a divisor of 30: never more than 12 a second
    span_s = (stamps[taken[-1]] - stamps[taken[0]]) / 1e9
    assert len(taken) - 1 <= 12 * span_s + 1 and len(taken) >= 10 * span_s


def test_no_limit_takes_everything_and_a_change_applies_from_the_next_frame():
    limit = RateLimit(0.0)
    stamps = [START_NS + i * CAMERA_NS for i in range(6)]
    assert _taken(limit, stamps) == list(range(6)) and limit.skipped == 0
    limit.set_rate(5.0)  # 200 ms
    later = [START_NS + (10 + i) * CAMERA_NS for i in range(13)]
    assert _taken(limit, later) == [0, 6, 12] and limit.skipped == 10
    limit.set_rate(0.0)
    assert _taken(limit, later) == list(range(13))


def test_a_stamp_that_goes_back_or_a_gap_starts_the_schedule_again():
    limit = RateLimit(10.0)
    assert limit.take(START_NS) and not limit.take(START_NS + CAMERA_NS)
    assert limit.take(START_NS - 60 * 10**9)  # a bag played again from its start
    assert not limit.take(START_NS - 60 * 10**9 + CAMERA_NS)
    assert limit.take(START_NS + 5 * 10**9)  # after a pause in the stream
    assert not limit.take(START_NS + 5 * 10**9)  # the same stamp again is not a new frame


# --- outputs on demand, offline: what rgbd-vae bag process writes is unchanged ------------------------
@pytest.fixture
def pipeline(pipeline_models):
    values = {**defaults(), "model": str(pipeline_models), "backend": "onnxruntime"}
    processor = Pipeline(values.__getitem__)
    yield processor
    processor.close()


def test_the_pipeline_neither_encodes_nor_decodes_when_only_the_depth_is_read(pipeline):
    encodes, decodes = _Calls(pipeline.encoder), _Calls(pipeline.decoder)
    frame = Frame(_rgb(START_NS))
    outputs = dict(pipeline(frame, lambda topic: topic not in ON_DEMAND))
    assert set(outputs) == {"depth/image"} and (encodes.count, decodes.count) == (0, 0)
    outputs = dict(pipeline(frame, lambda topic: topic not in ON_DEMAND or topic == "latent"))
    assert set(outputs) == {"depth/image", "latent"} and (encodes.count, decodes.count) == (1, 0)
    outputs = dict(pipeline(frame, lambda topic: topic not in ON_DEMAND or topic == "decoded/depth"))
    assert set(outputs) == {"depth/image", "decoded/depth"} and (encodes.count, decodes.count) == (2, 1)


def test_the_encoder_does_not_encode_without_a_latent_reader(pipeline_models):
    from rgbd_vae_ros.nodes.processors import Encoder

    encoder = Encoder({**defaults(), "model": str(pipeline_models), "backend": "onnxruntime"}.__getitem__)
    try:
        depth = numpy_to_image(np.full((120, 160), 2.0, np.float32), "32FC1", _header(START_NS))
        encodes, frame = _Calls(encoder.encoder), Frame(_rgb(START_NS), depth)
        assert encoder(frame, lambda topic: topic != "latent") == [] and encodes.count == 0
        assert [topic for topic, _ in encoder(frame, lambda topic: True)] == ["latent"] and encodes.count == 1
    finally:
        encoder.close()


def test_offline_processing_still_writes_every_output_but_the_points(pipeline):
    frame = Frame(_rgb(START_NS))
    topics = {topic for topic, _ in pipeline(frame, lambda topic: topic not in LIVE_ONLY)}
    assert topics == {"depth/image", "depth/colorized", "latent", "decoded/image", "decoded/depth"}


# --- live nodes with real rclpy -----------------------------------------------------------------------
def _node(cls, harness, namespace="/", **params):
    return harness.add(cls(context=harness.context, namespace=namespace,
                           parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))


def _namespace() -> str:
    """Topics of this test alone: a reader an earlier test left in discovery would count as a reader,
    and a publisher of a test beside this one would add frames."""
    return f"/demand_{uuid.uuid4().hex[:12]}"


def _latent(stamp_ns: int, model: str, dim: int = 16) -> CompressedImage:
    mu = np.zeros(dim, np.float32)
    return CompressedImage(header=_header(stamp_ns), format=str(LatentFormat(dim, "f32", "measured", model)),
                           data=mu.astype("<f4").tobytes())


@pytest.mark.slow
def test_a_decoder_without_readers_does_not_decode_and_a_reader_starts_its_output(harness, exported):
    from rgbd_vae_ros.nodes.rgbd_decoder import RgbdDecoderNode

    ns = _namespace()
    node = _node(RgbdDecoderNode, harness, ns, model=str(exported["conv_vae"][0]), reliable_input="true")
    assert harness.wait_for(lambda: node._active)
    decodes = _Calls(node.processor.decoder)
    model = node.processor.model_id
    pub = harness.publisher(CompressedImage, f"{ns}/latent")
    assert harness.send(pub, _latent(START_NS, model), lambda: node.counters.frames_out >= 1, resend_s=None)
    assert decodes.count == 0
    image = harness.listen(Image, f"{ns}/decoded/image")
    assert harness.wait_for(lambda: node.output_publishers["decoded/image"].get_subscription_count() > 0)
    assert harness.send(pub, _latent(START_NS + CAMERA_NS, model), lambda: image, resend_s=None)
    assert decodes.count >= 1 and image[0].header.stamp.nanosec == CAMERA_NS


@pytest.mark.slow
def test_the_pipeline_node_encodes_and_decodes_only_for_readers(harness, pipeline_models):
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode

    ns = _namespace()
    node = _node(RgbdPipelineNode, harness, ns, model=str(pipeline_models), reliable_input="true")
    depth = harness.listen(Image, f"{ns}/depth/image")
    assert harness.wait_for(lambda: node._active)
    encodes, decodes = _Calls(node.processor.encoder), _Calls(node.processor.decoder)
    pub = harness.publisher(Image, f"{ns}/image")
    assert harness.wait_for(lambda: node.output_publishers["depth/image"].get_subscription_count() > 0)
    assert harness.send(pub, _rgb(START_NS), lambda: depth, resend_s=None)
    assert (encodes.count, decodes.count) == (0, 0)
    latent = harness.listen(CompressedImage, f"{ns}/latent")
    assert harness.wait_for(lambda: node.output_publishers["latent"].get_subscription_count() > 0)
    assert harness.send(pub, _rgb(START_NS + CAMERA_NS), lambda: latent, resend_s=None)
    assert encodes.count == 1 and decodes.count == 0


@pytest.mark.slow
def test_max_rate_skips_frames_by_stamp_counts_them_apart_and_a_change_applies_at_once(harness, exported):
    from diagnostic_msgs.msg import DiagnosticArray

    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    ns = _namespace()  # exact counts: no frame of another test may arrive
    node = _node(DepthEstimatorNode, harness, ns, model=str(exported["unet_depth"][0]), max_rate=15.0,
                 reliable_input="true")
    assert harness.wait_for(lambda: node._active)
    depth_runs = _Calls(node.processor.depth)
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    pub = harness.publisher(Image, f"{ns}/image")

    def send(i):  # one frame at a time, so that each arrives (reliable) and is counted before the next
        seen = node.counters.frames_in + node.rate_limit.skipped
        assert harness.send(pub, _rgb(START_NS + i * CAMERA_NS),
                            lambda: node.counters.frames_in + node.rate_limit.skipped > seen, resend_s=None)

    for i in range(10):  # 30 Hz stamps into max_rate 15: every other frame
        send(i)
    assert (node.counters.frames_in, node.rate_limit.skipped) == (5, 5)
    c = node.counters
    assert harness.wait_for(lambda: c.frames_out + c.dropped + node._slot.dropped >= 5)
    assert c.rejected == 0 and c.frames_out + c.dropped + node._slot.dropped == 5 and depth_runs.count == c.frames_out

    def reported(key, value):
        return any(kv.key == key and kv.value == value for d in diagnostics for s in d.status for kv in s.values
                   if s.hardware_id == node.get_fully_qualified_name())

    assert harness.wait_for(lambda: reported("frames_skipped", "5") and reported("frames_in", "5"))
    assert node.set_parameters([Parameter("max_rate", value=0.0)])[0].successful
    for i in range(10, 14):  # no limit now: all taken
        send(i)
    assert (node.counters.frames_in, node.rate_limit.skipped) == (9, 5)


def test_onnx_runtime_pool_threads_sleep_between_ops(pipeline):
    # Spinning pool threads hold a core the node's executor and worker threads need (docs/benchmarks.md).
    for stage in (pipeline.depth, pipeline.encoder, pipeline.decoder):
        options = stage.backend.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
