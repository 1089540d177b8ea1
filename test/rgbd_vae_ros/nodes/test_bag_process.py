"""``rgbd-vae bag process``: every frame of a bag through the nodes' processors, offline."""

from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest

from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC, BagReader, typestore, write_bag
from rgbd_vae_ros.conversion import depth_msg_to_m, image_to_numpy
from rgbd_vae_ros.frames import stamp_ns
from rgbd_vae_ros.latent import encode, parse_info_message, parse_latent_message
from rgbd_vae_ros.nodes.parameters import defaults
from rgbd_vae_training.bag.process import process_bag
from rgbd_vae_training.cli import main

from .conftest import SEQUENCE_FRAMES

DEFAULT_CODEC = defaults()["latent_codec"]

OUTPUTS = ["/rgbd_vae/depth/image", "/rgbd_vae/depth/camera_info", "/rgbd_vae/depth/colorized", "/rgbd_vae/latent",
           "/rgbd_vae/decoded/image", "/rgbd_vae/decoded/depth", "/rgbd_vae/decoded/camera_info"]


def _message_hashes(bag) -> dict[str, str]:
    """topic -> SHA-256 over every message's recorded time and content, in order. (Content, not the
    bytes as written: rclpy leaves CDR alignment padding uninitialised, so re-serialise.)"""
    hashes: dict[str, hashlib._Hash] = {}
    store = typestore()
    with BagReader(bag) as reader:
        for topic, recorded, data in reader.messages():
            msgtype = reader.topics[topic].msgtype
            canonical = store.serialize_cdr(store.deserialize_cdr(data, msgtype), msgtype)
            hashes.setdefault(topic, hashlib.sha256()).update(recorded.to_bytes(8, "little") + canonical)
    return {topic: h.hexdigest() for topic, h in hashes.items()}


@pytest.fixture(scope="module")
def processed(sequence_bag, pipeline_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("processed") / "out"
    result = process_bag(sequence_bag, out, pipeline_models, backend="onnxruntime")
    return out, result


@pytest.mark.slow
def test_every_frame_comes_out_with_its_header_and_nothing_is_dropped(sequence_bag, processed):
    out, result = processed
    assert (result.frames_in, result.frames_out, sum(result.rejected.values())) == (SEQUENCE_FRAMES, SEQUENCE_FRAMES, 0)
    assert result.described["backend"] == "onnxruntime"
    with BagReader(sequence_bag) as bag:
        inputs = {stamp_ns(m): (recorded, m.header.frame_id) for recorded, m in bag.decoded(RGB_TOPIC)}
    with BagReader(out) as reader:
        assert sorted(reader.topics) == sorted([*OUTPUTS, "/rgbd_vae/latent/info"])
        # latent/info: once, latched, before the first latent, with the first frame's header and time
        [(recorded, info)] = list(reader.decoded("/rgbd_vae/latent/info"))
        assert reader.topics["/rgbd_vae/latent/info"].msgtype == "sensor_msgs/msg/CompressedImage"
        assert inputs[stamp_ns(info)] == (recorded, info.header.frame_id) and recorded == min(r for r, _ in inputs.values())
        model, _ = parse_info_message(info)
        for topic in OUTPUTS:
            messages = list(reader.decoded(topic))
            assert len(messages) == SEQUENCE_FRAMES, topic
            for recorded, msg in messages:  # recorded at the image's time, with the image's header
                assert inputs[stamp_ns(msg)] == (recorded, msg.header.frame_id), topic
                if topic == "/rgbd_vae/latent":
                    assert f"; model={model}" in msg.format


def test_outputs_are_the_stages_on_the_paired_frames(sequence_bag, pipeline_models, processed):
    """Content: depth is the depth stage on the image; the latent encodes the measured depth of the
    nearest stamp within sync_slop (the NYU RGB clock runs a few ms after the depth clock)."""
    from rgbd_vae_ros.nodes.processors import quantiser_of
    from rgbd_vae_ros.stages import DepthStage, EncodeStage

    out, _ = processed
    depth_stage = DepthStage.open(pipeline_models, backend="onnxruntime")
    encode_stage = EncodeStage.open(pipeline_models, backend="onnxruntime")
    quantiser = quantiser_of(encode_stage.info)
    with BagReader(sequence_bag) as bag:
        images = [m for _, m in bag.decoded(RGB_TOPIC)]
        depths = [m for _, m in bag.decoded(DEPTH_TOPIC)]
    with BagReader(out) as reader:
        estimated = {stamp_ns(m): m for _, m in reader.decoded("/rgbd_vae/depth/image")}
        latents = {stamp_ns(m): m for _, m in reader.decoded("/rgbd_vae/latent")}
    for image in images[::7]:
        rgb = image_to_numpy(image)
        np.testing.assert_allclose(image_to_numpy(estimated[stamp_ns(image)]), depth_stage(rgb), atol=1e-5)
        gaps = [abs(stamp_ns(d) - stamp_ns(image)) for d in depths]
        assert min(gaps) <= 0.02e9  # this bag pairs every image with a measured depth
        measured = depth_msg_to_m(depths[int(np.argmin(gaps))])
        mu, _ = encode_stage(rgb, measured)
        # the default codec (q8) over the export's table: the same codes as the stage's mu
        msg = latents[stamp_ns(image)]
        fmt, _, _ = parse_latent_message(msg, quantiser)
        assert (fmt.codec, fmt.depth, fmt.model) == (DEFAULT_CODEC, "measured", encode_stage.info.model_id)
        expected = parse_latent_message(types.SimpleNamespace(format=msg.format, data=encode(mu, fmt.codec, quantiser)),
                                        quantiser)[1]
        step = (quantiser.hi - quantiser.lo) / 16
        assert (np.abs(parse_latent_message(msg, quantiser)[1] - expected) <= step + 1e-6).all()


@pytest.mark.slow
def test_two_runs_write_the_same_messages(sequence_bag, pipeline_models, processed, tmp_path):
    out, _ = processed
    again = process_bag(sequence_bag, tmp_path / "again", pipeline_models, backend="onnxruntime")
    assert again.frames_out == SEQUENCE_FRAMES
    assert _message_hashes(tmp_path / "again") == _message_hashes(out)


@pytest.mark.slow
def test_depth_estimator_alone_and_parameters_from_the_command_line(sequence_bag, pipeline_models, tmp_path, capsys):
    code = main(["bag", "process", str(sequence_bag), str(tmp_path / "depth"), "--model", str(pipeline_models),
                 "--backend", "onnxruntime", "--node", "depth_estimator", "-p", "depth_encoding=16UC1",
                 "-p", "max_depth=3.0"])
    assert code == 0, capsys.readouterr().err
    assert f"{SEQUENCE_FRAMES} of {SEQUENCE_FRAMES} frames processed" in capsys.readouterr().out
    with BagReader(tmp_path / "depth") as reader:
        assert sorted(reader.topics) == sorted(OUTPUTS[:3])
        depth = [m for _, m in reader.decoded("/rgbd_vae/depth/image")]
    assert all(m.encoding == "16UC1" for m in depth)
    pixels = np.stack([image_to_numpy(m) for m in depth])
    assert pixels.max() <= 3000 and (pixels == 0).any()  # beyond max_depth is no reading, never 3000 mm


def _bag_with(path, topic, msgtype, message):
    with write_bag(path) as writer:
        writer.write(topic, msgtype, 1_000_000_000, message)


@pytest.mark.slow
def test_bad_bags_and_arguments_are_one_sentence_and_write_nothing(sequence_bag, pipeline_models, processed,
                                                                   tmp_path, capsys):
    out, _ = processed
    store = typestore()
    _bag_with(tmp_path / "strings", RGB_TOPIC, "std_msgs/msg/String", store.types["std_msgs/msg/String"](data="x"))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    model = ["--model", str(pipeline_models), "--backend", "onnxruntime"]
    cases = [
        (["bag", "process", str(out), str(tmp_path / "a")] + model, 1, "has no '/camera/rgb/image_raw' messages"),
        (["bag", "process", str(tmp_path / "strings"), str(tmp_path / "b")] + model, 1,
         "holds std_msgs/msg/String; the image input must be sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage"),
        (["bag", "process", str(sequence_bag), str(existing)] + model, 1, "already exists"),
        (["bag", "process", str(tmp_path / "missing"), str(tmp_path / "c")] + model, 1, "does not exist"),
        (["bag", "process", str(sequence_bag), str(tmp_path / "d")] + model + ["-p", "colour=red"], 1,
         "'colour' is not a node parameter"),
        (["bag", "process", str(sequence_bag), str(tmp_path / "e")] + model + ["-p", "max_depth=far"], 1,
         "max_depth is 'far'; expected a float"),
        (["bag", "process", str(sequence_bag), str(tmp_path / "f"), "--model", str(tmp_path / "none")], 1,
         "model file '" + str(tmp_path / "none") + "' does not exist"),
        (["bag", "process", str(sequence_bag), str(tmp_path / "g")], 2, "--model"),
    ]
    for argv, status, text in cases:
        with pytest.raises(SystemExit) if status == 2 else _no_exit() as raised:
            code = main(argv)
        code = raised.value.code if status == 2 else code
        err = capsys.readouterr().err
        assert code == status, (argv, err)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("rgbd-vae bag") and ": error: " in lines[-1] and text in lines[-1], err
        assert status == 2 or len(lines) == 1, err  # (argparse shows the usage before its sentence)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "strings"]
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


class _no_exit:
    value = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_camera_info_is_paired_by_stamp_and_checked(sequence_bag, processed):
    out, _ = processed
    with BagReader(sequence_bag) as bag:
        info = next(m for _, m in bag.decoded(RGB_INFO_TOPIC))
    with BagReader(out) as reader:
        published = [m for _, m in reader.decoded("/rgbd_vae/depth/camera_info")]
        depth = {stamp_ns(m): m for _, m in reader.decoded("/rgbd_vae/depth/image")}
    for msg in published:
        assert (msg.width, msg.height) == (depth[stamp_ns(msg)].width, depth[stamp_ns(msg)].height)
        np.testing.assert_allclose(msg.k, info.k)  # at the image's own size: unscaled
