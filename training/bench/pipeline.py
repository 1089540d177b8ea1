"""``rgbd-vae bench pipeline``: sustained output FPS, end-to-end latency and frames dropped of
rgbd_pipeline, per backend. Two feeds: synthetic 640x480 frames at a camera rate into the node in
this process, or (``--bag``) a recorded bag replayed at its own timing (looped for ``--seconds``)
into the ``rgbd_pipeline`` executable, as on a robot (SPEC §10)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .timing import rows_table


def model_folder(folder: Path) -> Path:
    """Default-size unet_depth and conv_vae with fresh weights, as ONNX and as checkpoints."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    from ..export import export_checkpoint

    from rgbd_vae_ros.inference import open_backend

    torch.manual_seed(0)
    for name, parts in (("unet_depth", ("depth",)), ("conv_vae", ("encoder", "decoder"))):
        checkpoint = folder / f"{name}.pt"
        payload = checkpoint_payload(build_model(name).eval())
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


def bench_pipeline(backends: list[str], models: Path | None = None, rate_hz: float = 30.0, seconds: float = 10.0,
                   width: int = 640, height: int = 480) -> list[dict]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from rgbd_vae_ros.conversion import numpy_to_image
    from rgbd_vae_ros.frames import stamp_ns
    from rgbd_vae_ros.nodes.rgbd_pipeline import RgbdPipelineNode

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = models or model_folder(Path(tmp))
        frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        for backend in backends:
            context = Context()
            rclpy.init(context=context)
            try:
                node = RgbdPipelineNode(context=context, parameter_overrides=[
                    Parameter("model", value=str(folder)), Parameter("backend", value=backend)])
                probe = Node("bench_probe", context=context)
                latencies, arrivals = [], []

                def received(msg, probe=probe):
                    now = probe.get_clock().now().nanoseconds
                    latencies.append((now - stamp_ns(msg)) / 1e6)
                    arrivals.append(time.monotonic())

                probe.create_subscription(Image, "decoded/image", received, 10)
                pub = probe.create_publisher(Image, "image", 10)
                executor = MultiThreadedExecutor(num_threads=3, context=context)
                executor.add_node(node)
                executor.add_node(probe)
                spinner = threading.Thread(target=executor.spin, daemon=True)
                spinner.start()
                deadline = time.monotonic() + 60
                while not latencies and time.monotonic() < deadline:  # warm up until the first output
                    msg = numpy_to_image(frame, "rgb8")
                    msg.header.stamp = probe.get_clock().now().to_msg()
                    pub.publish(msg)
                    time.sleep(0.2)
                time.sleep(1.0)
                latencies.clear(), arrivals.clear()
                start_in, start_dropped = node.counters.frames_in, node._slot.dropped
                period, start = 1.0 / rate_hz, time.monotonic()
                sent = 0
                while time.monotonic() - start < seconds:
                    msg = numpy_to_image(frame, "rgb8")
                    msg.header.stamp = probe.get_clock().now().to_msg()
                    pub.publish(msg)
                    sent += 1
                    time.sleep(max(0.0, start + sent * period - time.monotonic()))
                time.sleep(1.0)
                described = node.processor.describe()
                span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else seconds
                rows.append({"backend": described["backend"], "device": described["device"], "input": f"{width}x{height}",
                             "rate_hz": rate_hz, "sent": sent, "received": node.counters.frames_in - start_in,
                             "outputs": len(latencies), "fps": (len(arrivals) - 1) / span if len(arrivals) > 1 else 0.0,
                             "latency_median_ms": float(np.median(latencies)) if latencies else None,
                             "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
                             "dropped": node._slot.dropped - start_dropped})
                executor.shutdown(timeout_sec=2.0)
                node._stop_work()
            finally:
                rclpy.try_shutdown(context=context)
    return rows


def bench_pipeline_bag(backends: list[str], bag: Path, models: Path | None = None, seconds: float = 10.0) -> list[dict]:
    """The bag looped into the rgbd_pipeline executable for ``seconds`` per backend."""
    from rgbd_vae_ros.bags import RGB_TOPIC, BagReader

    from ..replay import end_to_end_latencies_ms, pipeline_diagnostics, replay_through_pipeline

    with BagReader(bag) as reader:
        info = reader.topics.get(RGB_TOPIC)
        if info is None or info.count < 2:
            raise ValueError(f"bag {str(bag)!r} has {'no' if info is None else info.count} {RGB_TOPIC} messages; "
                             "expected a sequence written by rgbd-vae bag")
        first = next(m for _, m in reader.decoded(RGB_TOPIC))
        rate_hz = (info.count - 1) / max(1e-9, (reader.end_ns - reader.start_ns) / 1e9)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = models or model_folder(Path(tmp))
        for backend in backends:
            replay = replay_through_pipeline(bag, folder, Path(tmp) / f"outputs_{backend}", backend=backend,
                                             loop_seconds=seconds)
            latencies = end_to_end_latencies_ms(replay)
            reported = pipeline_diagnostics(replay)
            rows.append({"backend": reported.get("backend") or backend, "device": reported.get("device") or "?",
                         "input": f"{first.width}x{first.height} bag", "rate_hz": round(rate_hz, 1),
                         "sent": replay.played_images, "outputs": len(latencies),
                         "fps": len(latencies) / replay.seconds if replay.seconds else 0.0,
                         "latency_median_ms": float(np.median(latencies)) if latencies else None,
                         "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
                         "dropped": replay.played_images - len(latencies)})
    return rows


COLUMNS = [("backend", "backend", ""), ("device", "device", ""), ("input", "input", ""), ("sent", "sent", "d"),
           ("outputs", "outputs", "d"), ("FPS", "fps", ".2f"), ("median ms", "latency_median_ms", ".1f"),
           ("p95 ms", "latency_p95_ms", ".1f"), ("dropped", "dropped", "d")]


def format_rows(rows: list[dict]) -> str:
    return rows_table(rows, COLUMNS)
