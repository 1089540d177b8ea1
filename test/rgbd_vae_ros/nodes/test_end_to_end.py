"""End to end: synth -> bag -> bag_player -> rgbd_pipeline (its own process) -> recorder.

The live replay checks plumbing (outputs, types, headers, that frames are answered); what the
outputs hold is checked through ``bag process`` (the same processing, offline, every frame), and the
two agree wherever the live run answered a frame."""

from __future__ import annotations

import numpy as np
import pytest

from rgbd_vae_ros.bags import RGB_TOPIC, BagReader
from rgbd_vae_ros.conversion import image_to_numpy
from rgbd_vae_ros.latent import parse_format, parse_info_message, parse_latent_message
from rgbd_vae_ros.frames import stamp_ns
from rgbd_vae_training.bag.convert import RGB_FRAME
from rgbd_vae_training.bag.process import process_bag
from rgbd_vae_training.replay import (DECODED_TOPIC, NAMESPACE, OUTPUT_TYPES, content_metrics, live_metrics,
                                      replay_through_pipeline)

from .conftest import SEQUENCE_FRAMES

LIVE_TOPICS = ("depth/image", "latent", "decoded/image", "decoded/depth")


def _by_stamp(bag, topic):
    with BagReader(bag) as reader:
        return {stamp_ns(m): m for _, m in reader.decoded(topic)} if topic in reader.topics else {}


@pytest.mark.slow
def test_a_replayed_sequence_comes_out_of_the_pipeline_as_bag_process_computes_it(sequence_bag, pipeline_models,
                                                                                   tmp_path):
    replay = replay_through_pipeline(sequence_bag, pipeline_models, tmp_path / "outputs", rate=0.5)
    assert replay.played_images == SEQUENCE_FRAMES
    with BagReader(sequence_bag) as bag:
        inputs = [stamp_ns(m) for _, m in bag.decoded(RGB_TOPIC)]
    with BagReader(tmp_path / "outputs") as out:
        assert set(OUTPUT_TYPES) <= set(out.topics), sorted(out.topics)
        for topic, msgtype in OUTPUT_TYPES.items():
            assert out.topics[topic].msgtype == msgtype
        outputs = {topic: [m for _, m in out.decoded(topic)] for topic in OUTPUT_TYPES if topic != "/diagnostics"}
    infos = outputs.pop(f"{NAMESPACE}/latent/info")  # latched, once per model: not derived from an input
    assert len(infos) == 1
    model, quantiser = parse_info_message(infos[0])
    assert all(parse_format(m.format).model == model for m in outputs[f"{NAMESPACE}/latent"])
    decoded = {stamp_ns(m) for m in outputs[DECODED_TOPIC]}
    print(f"live: {len(decoded)} of {len(inputs)} images decoded")
    assert decoded  # the live pipeline answers; how many depends on the machine, so content is judged offline
    for topic, messages in outputs.items():
        for msg in messages:  # headers preserved: an input's stamp and frame on every output
            assert stamp_ns(msg) in inputs and msg.header.frame_id == RGB_FRAME, topic
    live = live_metrics(replay)
    assert live["frames"]["decoded"] == len(decoded) and live["frames"]["node_frames_in"] >= len(decoded)
    assert live["backend"] == "onnxruntime" and 0 < live["latency_ms"]["end_to_end_median"]

    processed = process_bag(sequence_bag, tmp_path / "processed", pipeline_models, backend="onnxruntime")
    assert processed.frames_out == SEQUENCE_FRAMES
    # Live, an image whose depth comes later than the node waits for (a loaded machine) encodes the
    # estimate instead, as the pipeline is specified to: so each live frame must be one of the two.
    estimated = process_bag(sequence_bag, tmp_path / "estimated", pipeline_models, backend="onnxruntime",
                            parameters={"use_depth": "false"})
    assert estimated.frames_out == SEQUENCE_FRAMES
    online = {topic: _by_stamp(tmp_path / "outputs", f"{NAMESPACE}/{topic}") for topic in LIVE_TOPICS}
    offline = {name: {topic: _by_stamp(tmp_path / name, f"{NAMESPACE}/{topic}") for topic in LIVE_TOPICS}
               for name in ("processed", "estimated")}
    assert all(len(offline["processed"][t]) == SEQUENCE_FRAMES for t in LIVE_TOPICS)
    np.testing.assert_array_equal(  # the estimate does not depend on the measured depth
        image_to_numpy(next(iter(offline["processed"]["depth/image"].values()))),
        image_to_numpy(next(iter(offline["estimated"]["depth/image"].values()))))
    for stamp, live_latent in online["latent"].items():
        # the latent says which depth it encodes; its codes are bag process's for that depth
        fmt = parse_format(live_latent.format)
        name = {"measured": "processed", "estimated": "estimated"}[fmt.depth]
        offline_latent = offline[name]["latent"][stamp]
        assert parse_format(offline_latent.format) == fmt
        mus = [parse_latent_message(m, quantiser)[1] for m in (live_latent, offline_latent)]
        step = (quantiser.hi - quantiser.lo) / (256 if fmt.codec == "q8" else 16)  # a code apart at most
        assert (np.abs(mus[0] - mus[1]) <= step + 1e-6).all(), f"the live latent of {stamp} is not bag process's {name} one"
        for topic in ("depth/image", "decoded/image", "decoded/depth"):
            if stamp not in online[topic]:
                continue
            a, b = image_to_numpy(online[topic][stamp]), image_to_numpy(offline[name][topic][stamp])
            if topic == "decoded/image":
                assert np.abs(a.astype(int) - b).max() <= 1
            else:
                np.testing.assert_allclose(a, b, atol=1e-4, equal_nan=True)

    metrics, figure = content_metrics(sequence_bag, tmp_path / "processed", baseline_depth_m=2.5)
    assert metrics["frames"]["decoded"] == metrics["depth"]["estimated"]["images"] == SEQUENCE_FRAMES
    assert metrics["latent"]["frames"] == SEQUENCE_FRAMES and metrics["latent"]["model"] == model
    assert metrics["latent"]["depth"] == {"measured": SEQUENCE_FRAMES}  # bag process pairs every image
    assert np.isfinite(metrics["depth"]["estimated"]["abs_rel"]) and np.isfinite(metrics["reconstruction"]["rgb_psnr_db"])
    assert figure.ndim == 3 and figure.shape[2] == 3 and figure.shape[0] > 4 * 160
    assert "mean_image_baseline" not in metrics["reconstruction"]  # none given
    grey, _ = content_metrics(sequence_bag, tmp_path / "processed", baseline_depth_m=2.5,
                              baseline_rgb=np.full((6, 8, 3), 128, np.uint8))
    assert 0 < grey["reconstruction"]["mean_image_baseline"]["rgb_psnr_db"] < 60


@pytest.mark.slow
def test_a_pipeline_that_cannot_start_is_one_sentence(sequence_bag, tmp_path):
    from rgbd_vae_training.replay import ReplayError

    with pytest.raises(ReplayError, match="rgbd_pipeline did not get"):
        replay_through_pipeline(sequence_bag, tmp_path / "no_models", tmp_path / "outputs", start_timeout_s=5)
    assert not (tmp_path / "outputs").exists()
