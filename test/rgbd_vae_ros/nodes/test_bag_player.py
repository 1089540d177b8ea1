"""``bag_player`` and ``bag_recorder`` over real DDS: every message in order, recorded timing at
rate 1 and 2, /clock, loop, start offset, and recording back to a bag."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC, BagError, BagReader
from rgbd_vae_ros.nodes.bag_player import BagPlayerNode
from rgbd_vae_ros.nodes.bag_recorder import BagRecorderNode

SEQUENCE_FRAMES = 20  # frames of the sequence_bag fixture (conftest.py)

FRAMES = SEQUENCE_FRAMES
PLAYED = (RGB_TOPIC, DEPTH_TOPIC, RGB_INFO_TOPIC)
# Generous bounds, because CI may be a 2-core machine with both cores busy: they must hold there and
# still fail a player that ignores the timing (all 20 frames at once: a median deviation of ~160 ms)
# or the rate (at rate 2, ~80 ms). Measured on an idle machine: lag 0.35-0.5 ms, deviation median
# 0.1-1.4 ms, 95-100 % within 20 ms (docs/benchmarks.md).
DEVIATION_MEDIAN_S = 0.040
DEVIATION_CLOSE_S, DEVIATION_CLOSE_SHARE = 0.060, 0.75


def _recorded(bag: Path, topics=PLAYED) -> list[tuple[str, int]]:
    with BagReader(bag) as reader:
        return [(topic, stamp) for topic, stamp, _ in reader.messages(list(topics))]


class Arrivals:
    """(topic, header stamp ns, monotonic arrival time) of everything the probe receives."""

    def __init__(self, harness, topics=PLAYED):
        self.items: list[tuple[str, int, float]] = []
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            msg_type = CameraInfo if topic.endswith("camera_info") else Image
            harness.probe.create_subscription(msg_type, topic, lambda m, t=topic: self._add(t, m), qos)

    def _add(self, topic, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.items.append((topic, stamp, time.monotonic()))


def _player(harness, rclpy_context, bag, **params) -> BagPlayerNode:
    overrides = [Parameter("bag", value=str(bag))] + [Parameter(k, value=v) for k, v in params.items()]
    node = harness.add(BagPlayerNode(context=rclpy_context, parameter_overrides=overrides))
    for publisher in node.publishers_by_topic.values():
        assert harness.wait_for(lambda p=publisher: p.get_subscription_count() > 0), publisher.topic_name
    time.sleep(0.3)  # let the reverse (subscriber -> publisher) match settle too
    return node


@pytest.mark.slow
@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_every_message_goes_out_in_order_with_the_recorded_timing_and_arrives(harness, rclpy_context, sequence_bag,
                                                                               rate):
    """Timing is measured where the player publishes (DDS delivery to a subscriber in a loaded test
    process adds jitter no player controls); the subscriber checks what arrives and its order."""
    recorded = _recorded(sequence_bag)
    # Timing is judged on the best of three runs: a loaded machine sometimes starves the player for
    # tens of ms, while a player that ignores the timing or the rate fails every run.
    for attempt in range(3):
        arrivals = Arrivals(harness)
        node = _player(harness, rclpy_context, sequence_bag, rate=rate, topics=list(PLAYED))
        sent = []  # (topic, monotonic time) at each publish call, in the player's thread
        for topic, publisher in node.publishers_by_topic.items():
            publisher.publish = lambda data, t=topic, send=publisher.publish: (sent.append((t, time.monotonic())),
                                                                               send(data))
        node.play()
        assert [t for t, _ in sent] == [t for t, _ in recorded]  # every message, in the recorded order
        assert harness.wait_for(lambda: len(arrivals.items) >= FRAMES, timeout_s=30)
        rgb_arrived = [s for topic, s, _ in arrivals.items if topic == RGB_TOPIC]
        assert rgb_arrived == sorted(rgb_arrived) and set(rgb_arrived) <= {s for t, s in recorded if t == RGB_TOPIC}
        stamps_s = np.array([s for _, s in recorded]) / 1e9
        sent_s = np.array([at for _, at in sent])
        ideal = (stamps_s - stamps_s[0]) / rate
        deviation = np.abs(sent_s - np.median(sent_s - ideal) - ideal)
        print(f"rate {rate:g}, run {attempt + 1}: publish deviation from recorded time / rate median "
              f"{np.median(deviation) * 1e3:.2f} ms, max {deviation.max() * 1e3:.2f} ms, "
              f"{np.mean(deviation < DEVIATION_CLOSE_S):.0%} within {DEVIATION_CLOSE_S * 1e3:g} ms")
        harness.executor.remove_node(node)
        node.destroy_node()
        if np.median(deviation) < DEVIATION_MEDIAN_S and np.mean(deviation < DEVIATION_CLOSE_S) >= DEVIATION_CLOSE_SHARE:
            return
    pytest.fail(f"publish timing outside the tolerance in 3 runs at rate {rate:g}")


@pytest.mark.slow
def test_clock_follows_the_bag_time(harness, rclpy_context, sequence_bag):
    from rosgraph_msgs.msg import Clock

    clock = []
    arrivals = Arrivals(harness, topics=(RGB_TOPIC,))
    harness.probe.create_subscription(Clock, "/clock", lambda m: clock.append(
        (m.clock.sec * 1_000_000_000 + m.clock.nanosec, time.monotonic())), QoSProfile(depth=500))
    node = _player(harness, rclpy_context, sequence_bag, clock=True, clock_frequency=100.0, topics=[RGB_TOPIC])
    assert harness.wait_for(lambda: node.clock_publisher.get_subscription_count() > 0)
    published = []  # what the player sent, as sent: a starved subscriber may miss some of a 100 Hz clock
    send = node.clock_publisher.publish
    node.clock_publisher.publish = lambda msg: (published.append(msg.clock.sec * 1_000_000_000 + msg.clock.nanosec),
                                                send(msg))
    node.play()
    last = max(s for _, s in _recorded(sequence_bag, [RGB_TOPIC]))
    assert harness.wait_for(lambda: len(arrivals.items) == FRAMES and clock and clock[-1][0] == last, timeout_s=30)
    times = [t for t, _ in clock]
    assert times == sorted(times) and published == sorted(published) and set(times) <= set(published)
    with BagReader(sequence_bag) as reader:
        assert reader.start_ns <= published[0] and published[-1] == last
    assert {stamp for _, stamp, _ in arrivals.items} <= set(published)  # the clock says each image's time as it goes out
    # Between the images it ticks at clock_frequency of the bag's time (rate 1): about 100 per second.
    # Never more; fewer where a loaded machine starves the player's thread, so the lower bound only
    # says that it ticks between images at all.
    span_s = (published[-1] - published[0]) / 1e9
    assert 0.1 * 100 * span_s < len(published) - FRAMES < 1.5 * 100 * span_s + FRAMES


@pytest.mark.slow
def test_loop_plays_again_and_start_offset_skips_the_beginning(harness, rclpy_context, sequence_bag):
    recorded = [s for _, s in _recorded(sequence_bag, [RGB_TOPIC])]
    arrivals = Arrivals(harness, topics=(RGB_TOPIC,))
    offset_s = (recorded[5] - recorded[0]) / 1e9 - 0.001
    node = _player(harness, rclpy_context, sequence_bag, loop=True, rate=4.0, start_offset=offset_s,
                   topics=[RGB_TOPIC])
    thread = threading.Thread(target=node.play)
    thread.start()
    try:
        assert harness.wait_for(lambda: len(arrivals.items) >= 2 * (FRAMES - 5) + 3, timeout_s=20)
    finally:
        node.stop_event.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    stamps = [s for _, s, _ in arrivals.items]
    assert stamps[:2 * (FRAMES - 5)] == recorded[5:] * 2


@pytest.mark.slow
def test_a_missing_bag_or_topic_is_one_sentence(rclpy_context, sequence_bag, tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagPlayerNode(context=rclpy_context, parameter_overrides=[Parameter("bag", value=str(tmp_path / "no"))])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        BagPlayerNode(context=rclpy_context, parameter_overrides=[Parameter("bag", value=str(tmp_path / "empty"))])
    with pytest.raises(BagError, match="has no topic '/nope'"):
        BagPlayerNode(context=rclpy_context, parameter_overrides=[Parameter("bag", value=str(sequence_bag)),
                                                                  Parameter("topics", value=["/nope"])])


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.slow
def test_the_bag_player_executable_plays_to_the_end_and_exits_0(sequence_bag, tmp_path):
    done = subprocess.run([_script("bag_player"), "--ros-args", "-p", f"bag:={sequence_bag}", "-p", "rate:=4.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"played {4 * FRAMES} messages" in done.stderr  # /tf_static too where tf2_msgs is installed
    missing = subprocess.run([_script("bag_player"), "--ros-args", "-p", f"bag:={tmp_path / 'no'}"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert f"bag_player: error: bag '{tmp_path / 'no'}' does not exist." in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("executable, params, message", [
    ("bag_player", ["rate:=0.0"], "rate out of range"),
    ("bag_player", ["rate:=fast"], "expecting type 'DOUBLE'"),
    ("bag_recorder", ["duration:=-1.0", "topics:=[/a]"], "duration out of range"),
    ("depth_estimator", ["queue_size:=0"], "queue_size out of range"),
])
@pytest.mark.slow
def test_a_bad_parameter_at_start_is_one_sentence_and_status_1(sequence_bag, tmp_path, executable, params, message):
    args = [_script(executable), "--ros-args", "-p", f"bag:={sequence_bag if executable == 'bag_player' else tmp_path / 'b'}"]
    if executable == "depth_estimator":
        args = args[:2]
    for param in params:
        args += ["-p", param]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{executable}: error: " in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_loop_with_nothing_to_play_ends_instead_of_spinning(rclpy_context, sequence_bag):
    node = BagPlayerNode(context=rclpy_context, parameter_overrides=[
        Parameter("bag", value=str(sequence_bag)), Parameter("loop", value=True), Parameter("start_offset", value=60.0)])
    thread = threading.Thread(target=node.play)
    thread.start()
    thread.join(timeout=10)
    stopped = not thread.is_alive()
    node.stop_event.set()
    node.destroy_node()
    assert stopped and node.published == 0


def test_topics_whose_type_is_not_installed_are_named_and_skipped(rclpy_context, sequence_bag):
    try:
        import tf2_msgs  # noqa: F401
        pytest.skip("tf2_msgs is installed here, so /tf_static plays")
    except ImportError:
        pass
    node = BagPlayerNode(context=rclpy_context, parameter_overrides=[Parameter("bag", value=str(sequence_bag))])
    assert "/tf_static" not in node.publishers_by_topic and RGB_TOPIC in node.publishers_by_topic
    node.destroy_node()
    with pytest.raises(BagError, match="nothing to play"):  # and a loop over nothing is refused, not spun
        BagPlayerNode(context=rclpy_context, parameter_overrides=[
            Parameter("bag", value=str(sequence_bag)), Parameter("topics", value=["/tf_static"]),
            Parameter("loop", value=True)])


def test_the_recorder_discovers_topics_and_writes_what_it_receives(harness, rclpy_context, tmp_path):
    from rgbd_vae_ros.conversion import numpy_to_image

    publisher = harness.publisher(Image, "/rec/image", reliable=False)  # a camera driver's sensor-data QoS
    assert harness.wait_for(lambda: harness.probe.count_publishers("/rec/image") > 0)
    recorder = harness.add(BagRecorderNode(tmp_path / "out", topics=["/rec/image", "/rec/never"], storage="sqlite3",
                                           context=rclpy_context))
    assert harness.wait_for(lambda: recorder.publisher_count("/rec/image") > 0)
    for i in range(5):
        msg = numpy_to_image(np.full((4, 6, 3), i, np.uint8), "rgb8")
        msg.header.stamp.sec = 100 + i
        publisher.publish(msg)
        time.sleep(0.02)
    assert harness.wait_for(lambda: recorder.counts.get("/rec/image") == 5)
    assert not (tmp_path / "out").exists()  # appears only when recording ends
    recorder.finish()
    with BagReader(tmp_path / "out") as bag:
        assert set(bag.topics) == {"/rec/image"}
        assert not bag.topics["/rec/image"].qos.reliable  # the recorder matched the publisher's QoS
        messages = list(bag.decoded("/rec/image"))
    assert [m.header.stamp.sec for _, m in messages] == [100, 101, 102, 103, 104]
    assert [int(m.data[0]) for _, m in messages] == [0, 1, 2, 3, 4]


def test_an_abandoned_recording_leaves_nothing_and_an_existing_bag_is_refused(rclpy_context, tmp_path):
    recorder = BagRecorderNode(tmp_path / "out", topics=["/x"], context=rclpy_context)
    recorder.finish(keep=False)
    recorder.destroy_node()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "out").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagRecorderNode(tmp_path / "out", topics=["/x"], context=rclpy_context)


@pytest.mark.slow
def test_rgbd_vae_bag_record_stops_after_its_duration_with_a_whole_bag(tmp_path):
    done = subprocess.run([_script("rgbd-vae"), "bag", "record", str(tmp_path / "out"), "/diagnostics",
                           "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "bag_recorder: wrote" in done.stderr
    assert (tmp_path / "out" / "metadata.yaml").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- hostile bags (SPEC §8): the bag never chooses what Python imports; damage is reported ---------

HOSTILE_TYPES = ("this/msg/Foo", "os/msg/system", "../x/msg/Y", "antigravity/msg/Fly")


def _copy_bag(source: Path, out: Path, storage: str = "mcap", extra_types=()) -> Path:
    """``source``'s messages into a new bag, plus one message on a topic of each of ``extra_types``."""
    from rgbd_vae_ros.bags import write_bag

    with BagReader(source) as reader, write_bag(out, storage) as writer:
        for topic, stamp_ns, data in reader.messages():
            writer.write_raw(topic, reader.topics[topic].msgtype, stamp_ns, data)
        for i, msgtype in enumerate(extra_types):
            connection = writer._writer.add_connection(f"/hostile{i}", msgtype, msgdef="int32 x",
                                                       rihs01="RIHS01_" + "0" * 64)
            writer._writer.write(connection, reader.start_ns + i, b"\x00\x01\x00\x00\x07\x00\x00\x00")
    return out


@pytest.mark.slow
def test_a_bag_naming_modules_as_types_plays_the_rest_and_imports_none_of_them(sequence_bag, tmp_path):
    bag = _copy_bag(sequence_bag, tmp_path / "hostile", extra_types=HOSTILE_TYPES)
    with BagReader(bag) as reader:
        assert {reader.topics[f"/hostile{i}"].msgtype for i in range(len(HOSTILE_TYPES))} == set(HOSTILE_TYPES)
    script = ("import sys\nfrom rgbd_vae_ros.nodes.bag_player import play\n"
              f"status = play({{'bag': {str(bag)!r}, 'rate': 20.0}})\n"
              "print('imported:', sorted({'this', 'antigravity', 'x'} & set(sys.modules)))\nsys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout
    assert "Beautiful is better than ugly" not in done.stdout  # what importing `this` prints
    for i, msgtype in enumerate(HOSTILE_TYPES):
        assert re.search(rf"not playing /hostile{i}: its type {re.escape(repr(msgtype))} is not", done.stderr), done.stderr
    assert f"played {4 * FRAMES} messages" in done.stderr  # images and both camera_info topics still play


def test_message_types_resolve_only_from_installed_interface_packages():
    from rgbd_vae_ros.nodes.bag_player import resolve_message_type

    assert resolve_message_type("sensor_msgs/msg/Image")[0] is Image
    for msgtype, why in [("this/msg/Foo", "installed ROS interface package"),
                         ("os/msg/system", "installed ROS interface package"),
                         ("sensor_msgs/msg/Nope", "installed ROS interface package"),
                         ("../x/msg/Y", "not a ROS message type name"),
                         ("sensor_msgs/srv/SetCameraInfo", "not a ROS message type name"),
                         ("sensor_msgs.msg.Image", "not a ROS message type name")]:
        cls, reason = resolve_message_type(msgtype)
        assert cls is None and why in reason, (msgtype, reason)


def _corrupt_middle(bag: Path, size: int = 2000) -> None:
    """Overwrite ``size`` bytes in the middle of the bag's file where they hit its structure: the
    start of the middle MCAP chunk's records, or across the middle sqlite page boundary. (Bytes
    that land inside pixel data cannot be told from pixels: neither storage checksums them here.)"""
    import struct

    data_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    raw = data_file.read_bytes()
    if data_file.suffix == ".mcap":
        chunks, offset = [], 8  # after the magic: records of opcode (1), length (8), body
        while offset < len(raw) - 9:
            opcode, length = raw[offset], struct.unpack_from("<Q", raw, offset + 1)[0]
            if opcode == 0x06:
                chunks.append(offset)
            offset += 9 + length
        assert len(chunks) >= 2, "the fixture bag should span several chunks"
        start = chunks[len(chunks) // 2] + 9 + 40  # past the chunk header: its first message records
    else:
        page = struct.unpack_from(">H", raw, 16)[0]
        start = (len(raw) // page // 2) * page - size // 2
    with open(data_file, "r+b") as f:
        f.seek(start)
        f.write(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("storage, command", [("mcap", "bag_player"), ("sqlite3", "bag_player"),
                                              ("mcap", "rgbd-vae bag play")])
@pytest.mark.slow
def test_a_damaged_bag_is_one_sentence_and_status_1(sequence_bag, tmp_path, storage, command):
    bag = _copy_bag(sequence_bag, tmp_path / "damaged", storage)
    _corrupt_middle(bag)
    if command == "bag_player":
        args = [_script("bag_player"), "--ros-args", "-p", f"bag:={bag}", "-p", "rate:=20.0"]
    else:
        args = [_script("rgbd-vae"), "bag", "play", str(bag), "--rate", "20"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and str(bag) in errors[0], done.stderr
    assert re.match(rf"{command.removesuffix(' play')}: error: bag '.*' is damaged: reading stopped after \d+ messages \(",
                    errors[0]), errors[0]
    assert "Traceback" not in done.stderr
    print(errors[0])


def test_a_damaged_mcap_chunk_raises_after_the_messages_before_it(sequence_bag, tmp_path):
    bag = _copy_bag(sequence_bag, tmp_path / "damaged")
    _corrupt_middle(bag)
    read = []
    with BagReader(bag) as reader, pytest.raises(BagError, match=r"is damaged: reading stopped after \d+ messages"):
        for topic, stamp_ns, _ in reader.messages():
            read.append((topic, stamp_ns))
    with BagReader(sequence_bag) as reader:
        whole = [(topic, stamp_ns) for topic, stamp_ns, _ in reader.messages()]
    assert 0 < len(read) < len(whole) and set(read) < set(whole)


def test_a_damaged_bag_is_published_up_to_the_damage_then_raises(rclpy_context, sequence_bag, tmp_path):
    bag = _copy_bag(sequence_bag, tmp_path / "damaged")
    _corrupt_middle(bag)
    node = BagPlayerNode(context=rclpy_context, parameter_overrides=[
        Parameter("bag", value=str(bag)), Parameter("rate", value=100.0)])
    published = []
    node.on_publish = lambda topic, stamp_ns: published.append((topic, stamp_ns))
    try:
        with pytest.raises(BagError, match=r"is damaged: reading stopped after (\d+) messages") as raised:
            node.play()
    finally:
        node.reader.close()
        node.destroy_node()
    read = int(re.search(r"after (\d+) messages", str(raised.value)).group(1))
    playable = [(t, s) for t, s in _recorded(sequence_bag, list(node.publishers_by_topic))]
    assert 0 < len(published) == node.published and set(published) < set(playable)
    assert len(published) <= read  # every message read before the damage on a playable topic went out


def test_without_an_ament_index_types_resolve_from_generated_msg_packages_only(monkeypatch):
    from rgbd_vae_ros.nodes import bag_player

    monkeypatch.setattr(bag_player, "_interface_prefixes", lambda: [])  # no resource index anywhere
    assert bag_player.resolve_message_type("sensor_msgs/msg/CameraInfo")[0] is CameraInfo
    for msgtype in ("this/msg/Foo", "os/msg/system", "json/msg/Decoder", "sensor_msgs/msg/Nope"):
        assert bag_player.resolve_message_type(msgtype)[0] is None, msgtype
