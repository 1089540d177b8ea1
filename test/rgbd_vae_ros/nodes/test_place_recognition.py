"""The place_recognition node with real rclpy: latents of a walk that comes back to a room give a
match on place/match for the revisit, and none inside the recent window or for a new room."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

S = 1_000_000_000
MODEL = "0123456789ab"
DIM = 16


def _header(ns):
    from std_msgs.msg import Header

    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = divmod(ns, S)
    return header


def _codes():
    """Room A (0-4 s), room B (10-14 s), room A again (20-24 s): one direction per room plus noise."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=DIM), rng.normal(size=DIM)
    walk = [(k * S, a) for k in range(5)] + [(k * S, b) for k in range(10, 15)] + [(k * S, a) for k in range(20, 25)]
    return [(ns, (centre + 0.05 * rng.normal(size=DIM)).astype(np.float32)) for ns, centre in walk]


def test_a_revisit_is_matched_and_nothing_inside_the_recent_window_or_of_another_room(harness):
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage, TimeReference

    from rgbd_vae_ros.latent import Quantiser, build_info_message, build_latent_message
    from rgbd_vae_ros.nodes.base import LATCHED_QOS
    from rgbd_vae_ros.nodes.place_recognition import PlaceRecognitionNode

    walk = _codes()
    quantiser = Quantiser.fit(np.stack([code for _, code in walk]))
    node = harness.add(PlaceRecognitionNode(context=harness.context, parameter_overrides=[
        Parameter("min_score", value=0.8), Parameter("recent_window", value=5.0), Parameter("standardise", value=True),
        Parameter("reliable_input", value="true")]))
    matches = harness.listen(TimeReference, "place/match")
    info = harness.probe.create_publisher(CompressedImage, "latent/info", LATCHED_QOS)
    latent = harness.publisher(CompressedImage, "latent")
    assert harness.wait_for(lambda: node._active)
    info.publish(build_info_message(None, quantiser, MODEL))
    assert harness.wait_for(lambda: node.processor is not None and MODEL in node.processor.quantisers)

    def send(ns, code, codec="q8", model=MODEL):
        msg = build_latent_message(_header(ns), code, codec=codec, depth="measured", model=model,
                                   quantiser=quantiser)
        done = node.counters.frames_out + node.counters.rejected
        # once: a duplicate would be scored as a second match
        assert harness.send(latent, msg, lambda: node.counters.frames_out + node.counters.rejected > done,
                            resend_s=None)

    for ns, code in walk:
        send(ns, code)
    assert harness.wait_for(lambda: len(matches) >= 5)
    # only the revisit (20-24 s) matched, each to a keyframe of the first visit to room A (0-4 s)
    assert sorted(m.header.stamp.sec for m in matches) == [20, 21, 22, 23, 24]
    for m in matches:
        assert m.header.frame_id == "camera" and 0 <= m.time_ref.sec <= 4
        score, model = m.source.split("; ")
        assert model == f"model={MODEL}" and 0.8 <= float(score.removeprefix("score=")) <= 1.0
    assert node.processor.describe()["scoring"] == "standardised cosine"
    assert 3 <= node.processor.counts["keyframes"] <= 15

    # a q8 latent of a model whose latent/info never came cannot be read: rejected, not matched
    rejected = node.counters.rejected
    send(30 * S, walk[0][1], model="ba9876543210")
    assert node.counters.rejected == rejected + 1 and len(matches) == 5
    # its f32 codes can be: the index starts afresh for that model (counted), nothing to match yet
    send(31 * S, walk[0][1], codec="f32", model="ba9876543210")
    assert node.processor.counts["index_restarted"] == 1 and len(matches) == 5


def test_a_bad_parameter_ends_the_executable_with_one_sentence():
    exe = Path(sys.executable).with_name("place_recognition")
    result = subprocess.run([str(exe), "--ros-args", "-p", "min_score:=1.5"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "min_score" in result.stderr and "Traceback" not in result.stderr
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and "place/match" in help_text.stdout


def test_the_config_file_holds_the_place_parameters_with_their_defaults():
    import yaml

    from rgbd_vae_ros.nodes.place_recognition import PLACE_PARAMETERS

    config = Path(__file__).resolve().parents[3] / "config" / "place_recognition.yaml"
    values = yaml.safe_load(config.read_text())["/**"]["ros__parameters"]
    assert {name: values[name] for name in PLACE_PARAMETERS} == {n: d for n, (d, _, _) in PLACE_PARAMETERS.items()}


def test_encoder_latents_of_a_revisited_room_match_through_the_topics(harness, exported):
    """rgbd_encoder -> place_recognition: the room seen at 0-1 s and again at 20 s matches; the frames
    of another room (10-11 s) and those inside the recent window do not."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage, Image, TimeReference

    from rgbd_vae_ros.conversion import numpy_to_image
    from rgbd_vae_ros.nodes.place_recognition import PlaceRecognitionNode
    from rgbd_vae_ros.nodes.rgbd_encoder import RgbdEncoderNode

    encoder = harness.add(RgbdEncoderNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(exported["conv_vae"][0])), Parameter("latent_codec", value="q8"),
        Parameter("reliable_input", value="true")]))
    place = harness.add(PlaceRecognitionNode(context=harness.context, parameter_overrides=[
        Parameter("min_score", value=0.9999), Parameter("recent_window", value=5.0),
        Parameter("reliable_input", value="true")]))
    matches = harness.listen(TimeReference, "place/match")
    latents = harness.listen(CompressedImage, "latent")
    rgb_pub, depth_pub = harness.publisher(Image, "image"), harness.publisher(Image, "depth")
    # every link up before the first frame (each frame is then sent once: a late copy of an earlier
    # frame would look like a clock going back); q8 latents need the latched latent/info first
    assert harness.wait_for(lambda: encoder._active and place._active and rgb_pub.get_subscription_count() >= 1
                            and depth_pub.get_subscription_count() >= 1
                            and harness.probe.count_subscribers("latent") >= 2
                            and place.processor is not None and place.processor.quantisers)
    rng = np.random.default_rng(3)
    rooms = {"A": (rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), rng.uniform(0.5, 2, (120, 160))),
             "B": (np.full((120, 160, 3), 230, np.uint8), np.full((120, 160), 4.0))}
    for second, room in ((0, "A"), (1, "A"), (10, "B"), (11, "B"), (20, "A")):
        rgb, depth = rooms[room]
        done = place.counters.frames_out

        def send_pair():
            depth_pub.publish(numpy_to_image(depth.astype(np.float32), "32FC1", _header(second * S)))
            rgb_pub.publish(numpy_to_image(rgb, "rgb8", _header(second * S)))

        send_pair()
        for _ in range(60 if second == 0 else 0):
            # until the encoder has seen a depth image it does not wait for one (an RGB-only image is
            # rejected): the first pair is sent again; late copies of it only add room A again
            if harness.wait_for(lambda: place.counters.frames_out > done, timeout_s=1.0):
                break
            send_pair()
        assert harness.wait_for(lambda: place.counters.frames_out > done, timeout_s=60), second
    assert harness.wait_for(lambda: matches)
    assert [m.header.stamp.sec for m in matches] == [20]  # the revisit only
    assert all(m.time_ref.sec in (0, 1) for m in matches)
    assert {m.source.split("model=")[1] for m in matches} == {latents[0].format.split("model=")[1]}
