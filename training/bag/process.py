"""``rgbd-vae bag process``: every frame of a bag through a node's processor, offline (SPEC §9).

The same processor and the same stamp pairing (:mod:`rgbd_vae_ros.frames`) as the live node, but
no DDS, no keep-latest worker and so no drops: every image of the bag becomes a frame, in the
bag's order, and the outputs go to a new bag with the input headers, recorded at the image's
recorded time. Two runs on one machine give the same bytes; this is how tests and the demo judge
content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rgbd_vae_ros.bags import DEPTH_TOPIC, LATCHED, RGB_INFO_TOPIC, RGB_TOPIC, BagError, BagReader, Qos, write_bag

NAMESPACE = "/rgbd_vae"
# Input streams of a converted bag (rgbd-vae bag from-*); the decoder reads a recorded latent and
# its latent/info (SPEC §4.3).
DEFAULT_TOPICS = {"image": RGB_TOPIC, "depth": DEPTH_TOPIC, "camera_info": RGB_INFO_TOPIC,
                  "latent": f"{NAMESPACE}/latent", "latent/info": f"{NAMESPACE}/latent/info"}


@dataclass
class Processed:
    """What a run did: frames in and out, rejects by reason, and what the processor counted."""

    frames_in: int = 0
    frames_out: int = 0
    rejected: Counter = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    described: dict[str, str] = field(default_factory=dict)


def type_name(msg_class) -> str:
    """'sensor_msgs/msg/Image' for sensor_msgs.msg.Image."""
    return f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"


def node_parameters(model: str, backend: str, overrides: dict | None = None) -> dict:
    """The node's parameters: its declared defaults, ``model``/``backend``, and checked overrides."""
    from rgbd_vae_ros.nodes.parameters import defaults, problem

    values = defaults()
    values.update(model=str(model), backend=backend)
    for name, value in (overrides or {}).items():
        if name not in values:
            raise ValueError(f"parameter {name!r} is not a node parameter; expected one of {', '.join(values)}")
        default = values[name]
        if isinstance(default, bool):
            if str(value).lower() not in ("true", "false"):
                raise ValueError(f"parameter {name} is {value!r}; expected true or false")
            value = str(value).lower() == "true"
        elif isinstance(default, (int, float)):
            try:
                value = type(default)(value)
            except ValueError:
                raise ValueError(f"parameter {name} is {value!r}; expected a {type(default).__name__}") from None
        values[name] = value
    reason = problem(values)
    if reason is not None:
        raise ValueError(f"parameter {reason}")
    return values


def process_bag(source: Path, out: Path, model: Path, backend: str = "auto", executable: str = "rgbd_pipeline",
                topics: dict[str, str] | None = None, parameters: dict | None = None, namespace: str = NAMESPACE,
                storage: str = "mcap", overwrite: bool = False, progress: Callable[[], None] | None = None) -> Processed:
    """Run ``executable``'s processor over every frame of ``source`` and write its outputs to ``out``."""
    from rclpy.serialization import deserialize_message, serialize_message

    from rgbd_vae_ros.frames import FrameAssembler
    from rgbd_vae_ros.nodes.base import BAD_INPUT
    from rgbd_vae_ros.nodes.processors import COMPRESSED_IMAGE, INPUT_TYPES, LIVE_ONLY, PROCESSORS

    if executable not in PROCESSORS:
        raise ValueError(f"node {executable!r} is not one of {', '.join(PROCESSORS)}")
    if Path(out).exists() and not overwrite:
        raise BagError(f"{out} already exists; remove it or choose another output name")
    params = node_parameters(model, backend, parameters)
    stream_topics = {**DEFAULT_TOPICS, **(topics or {})}
    result = Processed()
    with BagReader(source) as reader:
        processor = PROCESSORS[executable](params.__getitem__)
        try:
            streams = _streams(reader, processor.inputs, stream_topics)
            main = processor.inputs[0]
            if main not in streams:
                raise BagError(f"bag {str(source)!r} has no {stream_topics[main]!r} messages; {executable} needs "
                               f"its {main} input there (the bag has {', '.join(sorted(reader.topics)) or 'no topics'})")
            paired = tuple(s for s in streams if s != main)
            assembler = FrameAssembler(params["sync_slop"], paired, await_unseen=True)
            by_topic = {topic: stream for stream, topic in streams.items()}
            side = {stream_topics[t]: t for t in processor.side_inputs if stream_topics.get(t) in reader.topics}
            recorded_at: dict[int, int] = {}  # id(image message) -> recorded time
            qos = Qos(reliable=True, depth=params["queue_size"])

            with write_bag(out, storage, overwrite=overwrite) as writer:
                for topic in (t for t in processor.outputs if t not in LIVE_ONLY):
                    writer.add_topic(_join(namespace, topic), type_name(processor.outputs[topic]), qos)
                for topic, msg_type in processor.latched.items():
                    writer.add_topic(_join(namespace, topic), type_name(msg_type), LATCHED)
                latched_written = False

                def run(frames) -> None:
                    nonlocal latched_written
                    for frame in frames:
                        recorded = recorded_at.pop(id(frame.image))
                        if not latched_written:  # once, before the first output, with the first frame's header
                            for topic, msg in processor.latched_messages(frame.image.header):
                                writer.write_raw(_join(namespace, topic), type_name(type(msg)), recorded,
                                                 serialize_message(msg))
                            latched_written = True
                        try:
                            outputs = processor(frame, lambda topic: topic not in LIVE_ONLY)
                        except BAD_INPUT as exc:
                            result.rejected[str(exc)] += 1
                            outputs = []
                        else:
                            result.frames_out += 1
                        for topic, msg in outputs:
                            writer.write_raw(_join(namespace, topic), type_name(type(msg)), recorded,
                                             serialize_message(msg))
                        if progress is not None:
                            progress()

                message_types = {topic: COMPRESSED_IMAGE[1] if reader.topics[topic].msgtype.endswith("/CompressedImage")
                                 else INPUT_TYPES[stream] for topic, stream in by_topic.items()}
                for topic, recorded, data in reader.messages([*by_topic, *side]):
                    if topic in side:
                        try:
                            processor.side_input(side[topic], deserialize_message(data, processor.side_inputs[side[topic]]))
                        except Exception as exc:  # not a message of its type: counted like the node does
                            processor.note(f"{side[topic].replace('/', '_')}_rejected",
                                           f"a message on {topic} does not deserialise ({type(exc).__name__})")
                        continue
                    stream = by_topic[topic]
                    try:
                        msg = deserialize_message(data, message_types[topic])
                    except Exception as exc:  # bytes that are not a message of the topic's type: counted
                        result.frames_in += stream == main
                        result.rejected[f"a message on {topic} does not deserialise as "
                                        f"{reader.topics[topic].msgtype} ({type(exc).__name__})"] += 1
                        continue
                    if stream == main:
                        result.frames_in += 1
                        recorded_at[id(msg)] = recorded
                        stream = "image"
                    run(assembler.add(stream, msg))
                run(assembler.flush())
                result.topics = dict(writer.counts)
            result.counts = dict(processor.counts)
            result.described = processor.describe()
        finally:
            processor.close()
    return result


def _join(namespace: str, topic: str) -> str:
    return f"{namespace.rstrip('/')}/{topic}" if namespace.strip("/") else f"/{topic}"


def _streams(reader: BagReader, inputs: tuple[str, ...], topics: dict[str, str]) -> dict[str, str]:
    """stream -> topic for the processor's inputs that the bag holds, each checked for its type."""
    from rgbd_vae_ros.nodes.processors import COMPRESSED_IMAGE, INPUT_TYPES

    found = {}
    for stream in inputs:
        info = reader.topics.get(topics[stream])
        if info is None or info.count == 0:
            continue
        accepted = [type_name(INPUT_TYPES[stream])] + ([type_name(COMPRESSED_IMAGE[1])] if stream == "image" else [])
        if info.msgtype not in accepted:
            raise BagError(f"topic {info.topic!r} holds {info.msgtype}; the {stream} input must be "
                           f"{' or '.join(accepted)}")
        found[stream] = info.topic
    return found


def summary(result: Processed) -> str:
    rejected = sum(result.rejected.values())
    text = f"{result.frames_out} of {result.frames_in} frames processed"
    if rejected:
        reason, count = result.rejected.most_common(1)[0]
        text += f", {rejected} rejected (most often, {count}x: {reason})"
    for key, count in sorted(result.counts.items()):
        text += f", {key} {count}"
    return text
