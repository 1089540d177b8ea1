"""``rgbd-vae bench pipeline``: rgbd_pipeline's sustained FPS, processing latency and drops next to
what its stages alone reach on the same frames in the same run (SPEC §10 node overhead), per model
set and backend. Two feeds: one 640x480 rgb8 frame re-stamped at a camera rate into the node in
this process, or (``--bag``) a recorded bag replayed at its own timing (looped for ``--seconds``)
into the ``rgbd_pipeline`` executable, as on a robot.

Without ``--model-dir`` it builds, with fresh weights (speed does not depend on them), the demo's
tiny models (tiny_depth + tiny_vae), the default ones (unet_depth + conv_vae) and fast_depth with the
tiny VAE, and exports them to ONNX: the command needs nothing prepared."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .timing import rows_table

# Model sets: (label, depth config, VAE config), configs from training/configs.
MODEL_SETS = (("tiny", "tiny_depth", "tiny_vae"), ("default", "unet_depth", "conv_vae"),
              ("fast_depth", "fast_depth", "tiny_vae"))
# What the probe reads, as a SLAM back end and a viewer would; depth/image is always published.
READ = ("latent", "decoded/image")
STAGES_S = 4.0  # seconds of the stages-alone loop, half before the node and half after (10 calls at least each)


def model_folder(folder: Path, depth: str = "unet_depth", vae: str = "conv_vae") -> Path:
    """The depth and VAE configs' models with fresh weights, as ONNX and as checkpoints."""
    import torch

    from rgbd_vae_ros.inference import open_backend
    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    from ..export import export_checkpoint
    from ..train.config import load_config

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, parts in ((depth, ("depth",)), (vae, ("encoder", "decoder"))):
        config = load_config(name)
        checkpoint = folder / f"{name}.pt"
        payload = checkpoint_payload(build_model(config.model_name, config.model).eval())
        torch.save(payload, checkpoint)
        export_checkpoint(checkpoint, folder)
        if "encoder" in parts:  # the export's latent quantiser table, so torch runs the default q codec too
            backend = open_backend(folder / "encoder.onnx", "encoder", "onnxruntime", "cpu")
            payload["latent_quantiser"] = backend.info.latent_quantiser
            backend.close()
            torch.save(payload, checkpoint)
        for part in parts:
            shutil.copy(checkpoint, folder / f"{part}.pt")
    return folder


def _wanted(topic: str) -> bool:
    from rgbd_vae_ros.nodes.processors import ON_DEMAND

    return topic not in ON_DEMAND or topic in READ


def stages_alone(folder: Path, backend: str, frame, seconds: float = STAGES_S, wanted=_wanted) -> dict:
    """The pipeline's processing of ``frame`` (a :class:`~rgbd_vae_ros.frames.Frame`) called in a
    loop, no ROS: conversion, resizes, the three models and the output messages, for the outputs
    the node computes (``wanted``: by default those of :data:`READ`)."""
    from rgbd_vae_ros.nodes.parameters import defaults
    from rgbd_vae_ros.nodes.processors import Pipeline

    values = {**defaults(), "model": str(folder), "backend": backend}
    processor = Pipeline(values.__getitem__)
    try:
        for _ in range(3):
            processor(frame, wanted)
        samples, start = [], time.perf_counter()
        while len(samples) < 10 or time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            processor(frame, wanted)
            samples.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - start
    finally:
        processor.close()
    return {"stages_ms": float(np.median(samples)) * 1e3, "stages_fps": len(samples) / elapsed}


def bench_pipeline(backends: list[str], models: Path | None = None, rate_hz: float = 30.0, seconds: float = 10.0,
                   width: int = 640, height: int = 480, model_sets=MODEL_SETS,
                   stages_s: float = STAGES_S) -> list[dict]:
    """Per model set (``models``: one given folder instead) and backend, the stages alone and then
    the node on the same frame at ``rate_hz``."""
    from rgbd_vae_ros.conversion import numpy_to_image
    from rgbd_vae_ros.frames import Frame

    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = numpy_to_image(rgb, "rgb8")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("given", models)] if models else [(label, model_folder(Path(tmp) / label, depth, vae))
                                                    for label, depth, vae in model_sets]
        for label, folder in sets:
            for backend in backends:
                # Half of the stages' loop before the node and half after: a machine whose load
                # drifts during the run weighs on both sides alike.
                before = stages_alone(folder, backend, Frame(msg), stages_s / 2)
                row = {"models": label, **_node_run(folder, backend, msg, rate_hz, seconds)}
                after = stages_alone(folder, backend, Frame(msg), stages_s / 2)
                row.update({key: (before[key] + after[key]) / 2 for key in before})
                row["input"] = f"{width}x{height}"
                rows.append(_with_ratios(row, rate_hz))
    return rows


def _with_ratios(row: dict, rate_hz: float) -> dict:
    """SPEC §10's two ratios: node FPS over what the stages reach at this input rate, and median
    processing latency over the stages' time."""
    row["fps_ratio"] = row["fps"] / min(row["stages_fps"], rate_hz)
    if row.get("latency_median_ms") is not None:
        row["latency_ratio"] = row["latency_median_ms"] / row["stages_ms"]
    return row


def _node_run(folder: Path, backend: str, msg, rate_hz: float, seconds: float) -> dict:
    """rgbd_pipeline as its executable runs it (one executor thread, its worker thread), fed ``msg``
    re-stamped at ``rate_hz`` by a probe node on an executor thread of its own."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage, Image

    from rgbd_vae_ros.frames import stamp_ns
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode

    context = Context()
    rclpy.init(context=context)
    executors = []
    try:
        node = RgbdPipelineNode(context=context, parameter_overrides=[
            Parameter("model", value=str(folder)), Parameter("backend", value=backend)])
        probe = Node("bench_probe", context=context)
        end_to_end, arrivals = [], []

        def received(out, probe=probe):
            end_to_end.append((probe.get_clock().now().nanoseconds - stamp_ns(out)) / 1e6)
            arrivals.append(time.monotonic())

        probe.create_subscription(Image, "decoded/image", received, 10)
        probe.create_subscription(CompressedImage, "latent", lambda out: None, 10)
        pub = probe.create_publisher(Image, "image", 10)
        for member in (node, probe):
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(member)
            threading.Thread(target=executor.spin, daemon=True).start()
            executors.append(executor)
        deadline = time.monotonic() + 120
        while len(end_to_end) < 3 and time.monotonic() < deadline:  # warm up until outputs flow
            msg.header.stamp = probe.get_clock().now().to_msg()
            pub.publish(msg)
            time.sleep(0.2)
        time.sleep(1.0)
        c = node.counters
        end_to_end.clear(), arrivals.clear()
        start_in, start_out, start_dropped = c.frames_in, c.frames_out, c.dropped + node._slot.dropped
        period, start = 1.0 / rate_hz, time.monotonic()
        sent = 0
        while time.monotonic() - start < seconds:
            msg.header.stamp = probe.get_clock().now().to_msg()  # the same pixels, a new frame
            pub.publish(msg)
            sent += 1
            time.sleep(max(0.0, start + sent * period - time.monotonic()))
        time.sleep(1.0)
        processed = c.frames_out - start_out
        with c.lock:
            latency = list(c.latency_ms)[-min(processed, len(c.latency_ms)):] if processed else []
        described = node.processor.describe()
        span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else seconds
        return {"backend": described["backend"], "device": described["device"], "rate_hz": rate_hz, "sent": sent,
                "received": c.frames_in - start_in, "outputs": len(arrivals),
                "fps": (len(arrivals) - 1) / span if len(arrivals) > 1 else 0.0,
                "latency_median_ms": float(np.median(latency)) if latency else None,
                "latency_p95_ms": float(np.percentile(latency, 95)) if latency else None,
                "end_to_end_median_ms": float(np.median(end_to_end)) if end_to_end else None,
                "dropped": c.dropped + node._slot.dropped - start_dropped}
    finally:
        for executor in executors:
            executor.shutdown(timeout_sec=2.0)
        if "node" in locals():
            node._stop_work()
        rclpy.try_shutdown(context=context)


def bench_pipeline_bag(backends: list[str], bag: Path, models: Path | None = None, seconds: float = 10.0,
                       stages_s: float = STAGES_S) -> list[dict]:
    """The bag looped into the rgbd_pipeline executable for ``seconds`` per backend, next to the
    stages alone on the bag's first frame (image, depth and camera_info), every output computed as
    the recorder reads them all."""
    from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC, BagReader
    from rgbd_vae_ros.frames import Frame

    from ..replay import end_to_end_latencies_ms, pipeline_diagnostics, replay_through_pipeline

    with BagReader(bag) as reader:
        info = reader.topics.get(RGB_TOPIC)
        if info is None or info.count < 2:
            raise ValueError(f"bag {str(bag)!r} has {'no' if info is None else info.count} {RGB_TOPIC} messages; "
                             "expected a sequence written by rgbd-vae bag")
        first = next(m for _, m in reader.decoded(RGB_TOPIC))
        partners = {topic: next((m for _, m in reader.decoded(topic)), None) if topic in reader.topics else None
                    for topic in (DEPTH_TOPIC, RGB_INFO_TOPIC)}
        rate_hz = (info.count - 1) / max(1e-9, (reader.end_ns - reader.start_ns) / 1e9)
    frame = Frame(first, depth=partners[DEPTH_TOPIC], camera_info=partners[RGB_INFO_TOPIC])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = models or model_folder(Path(tmp))
        for backend in backends:
            before = stages_alone(folder, backend, frame, stages_s / 2, wanted=_all_but_points)
            replay = replay_through_pipeline(bag, folder, Path(tmp) / f"outputs_{backend}", backend=backend,
                                             loop_seconds=seconds)
            after = stages_alone(folder, backend, frame, stages_s / 2, wanted=_all_but_points)
            latencies = end_to_end_latencies_ms(replay)
            reported = pipeline_diagnostics(replay)
            row = {"models": "given" if models else "default", "backend": reported.get("backend") or backend,
                   "device": reported.get("device") or "?", "input": f"{first.width}x{first.height} bag",
                   "rate_hz": round(rate_hz, 1), "sent": replay.played_images, "outputs": len(latencies),
                   "fps": len(latencies) / replay.seconds if replay.seconds else 0.0,
                   # processing latency as the node reports it (its last 200 frames), e2e from the recorder
                   "latency_median_ms": _float(reported.get("latency_median_ms")),
                   "latency_p95_ms": _float(reported.get("latency_p95_ms")),
                   "end_to_end_median_ms": float(np.median(latencies)) if latencies else None,
                   "dropped": replay.played_images - len(latencies),
                   **{key: (before[key] + after[key]) / 2 for key in before}}
            rows.append(_with_ratios(row, row["rate_hz"]))
    return rows


def _all_but_points(topic: str) -> bool:
    from rgbd_vae_ros.nodes.processors import LIVE_ONLY

    return topic not in LIVE_ONLY


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


COLUMNS = [("models", "models", ""), ("backend", "backend", ""), ("device", "device", ""), ("input", "input", ""),
           ("stages ms", "stages_ms", ".1f"), ("stages FPS", "stages_fps", ".1f"), ("sent", "sent", "d"),
           ("outputs", "outputs", "d"), ("node FPS", "fps", ".2f"), ("median ms", "latency_median_ms", ".1f"),
           ("p95 ms", "latency_p95_ms", ".1f"), ("e2e ms", "end_to_end_median_ms", ".1f"), ("dropped", "dropped", "d"),
           ("FPS ratio", "fps_ratio", ".2f"), ("latency ratio", "latency_ratio", ".2f")]
NOTE = ("stages: the pipeline's processing called in a loop on the same frame (conversion, resizes, models, messages); "
        "node: rgbd_pipeline fed at the input rate (that frame re-stamped; --bag: the bag played by bag_player, "
        "every output recorded by bag_recorder); median/p95: processing latency (receipt to publish); e2e: input "
        "publish to decoded/image received; FPS ratio: node FPS / min(stages FPS, input rate), target >= 0.8; "
        "latency ratio: median / stages ms, target <= 1.5 (SPEC §10)")


def format_rows(rows: list[dict]) -> str:
    table = rows_table(rows, COLUMNS)
    return f"{table}\n{NOTE}" if any("stages_ms" in row for row in rows) else table
