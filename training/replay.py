"""A converted bag played through ``rgbd_pipeline`` with every output recorded (SPEC §9, §10).

The pipeline runs as its own process through its console script, as on a robot; this process
runs ``bag_player`` (publishing ``/clock``; the pipeline uses simulated time) and the recorder.
End-to-end latency is measured on this machine's wall clock: from when the player published an
image to when the recorder received the decoded image carrying that image's stamp.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC
from rgbd_vae_ros.frames import stamp_ns

NAMESPACE = "/rgbd_vae"
IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
COMPRESSED = "sensor_msgs/msg/CompressedImage"  # the latent and latent/info (SPEC §4.3)
OUTPUT_TYPES = {f"{NAMESPACE}/depth/image": IMAGE, f"{NAMESPACE}/depth/camera_info": CAMERA_INFO,
                f"{NAMESPACE}/depth/colorized": IMAGE, f"{NAMESPACE}/latent": COMPRESSED,
                f"{NAMESPACE}/latent/info": COMPRESSED,
                f"{NAMESPACE}/decoded/image": IMAGE, f"{NAMESPACE}/decoded/depth": IMAGE,
                "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray"}
DECODED_TOPIC = f"{NAMESPACE}/decoded/image"
LATENT_INFO_TOPIC = f"{NAMESPACE}/latent/info"


class ReplayError(Exception):
    """The pipeline could not be started or fed, in one sentence."""


@dataclass
class Replay:
    outputs: Path
    played_images: int
    image_sent_ns: dict[int, list[int]] = field(default_factory=dict)  # image stamp -> wall times it was published
    seconds: float = 0.0


def _pipeline_command(models: Path, backend: str, parameters: dict) -> list[str]:
    executable = Path(sys.executable).with_name("rgbd_pipeline")
    command = [str(executable), "--ros-args", "-r", f"__ns:={NAMESPACE}", "-r", f"image:={RGB_TOPIC}",
               "-r", f"depth:={DEPTH_TOPIC}", "-r", f"camera_info:={RGB_INFO_TOPIC}",
               "-p", f"model:={models}", "-p", f"backend:={backend}", "-p", "reliable_input:=true",
               "-p", "use_sim_time:=true"]
    for key, value in parameters.items():
        command += ["-p", f"{key}:={value}"]
    return command


def _wait(condition, timeout_s: float, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise ReplayError(f"rgbd_pipeline exited with status {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise ReplayError(f"rgbd_pipeline did not get {what} within {timeout_s:g} s")
        time.sleep(0.05)


def replay_through_pipeline(bag: Path, models: Path, outputs: Path, backend: str = "onnxruntime",
                            rate: float = 1.0, loop_seconds: float = 0.0, parameters: dict | None = None,
                            start_timeout_s: float = 120.0) -> Replay:
    """Play ``bag`` into rgbd_pipeline (models from ``models``) and record its outputs to ``outputs``.

    With ``loop_seconds`` the bag plays in a loop for that long (for benchmarks).
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from rgbd_vae_ros.nodes.bag_player import BagPlayerNode
    from rgbd_vae_ros.nodes.bag_recorder import BagRecorderNode

    context = Context()
    rclpy.init(context=context)
    process = subprocess.Popen(_pipeline_command(models, backend, parameters or {}), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(process.stdout), daemon=True)
    reader.start()
    recorder = player = executor = None
    result = None
    try:
        # latent/info is latched: subscribed once its publisher is found, with the transient-local QoS it
        # offers, so its one message (sent at activation, maybe before the match) still arrives
        early = {topic: msgtype for topic, msgtype in OUTPUT_TYPES.items() if topic != LATENT_INFO_TOPIC}
        recorder = BagRecorderNode(outputs, topics=list(OUTPUT_TYPES), types=early, overwrite=True, context=context)
        player = BagPlayerNode(context=context, parameter_overrides=[
            Parameter("bag", value=str(bag)), Parameter("rate", value=float(rate)),
            Parameter("topics", value=[RGB_TOPIC, DEPTH_TOPIC, RGB_INFO_TOPIC]), Parameter("clock", value=True),
            Parameter("clock_frequency", value=200.0), Parameter("loop", value=loop_seconds > 0)])
        sent: dict[int, list[int]] = {}
        images = [0]

        def published(topic: str, recorded_ns: int) -> None:
            if topic == RGB_TOPIC:
                sent.setdefault(recorded_ns, []).append(time.time_ns())
                images[0] += 1

        player.on_publish = published
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(recorder)
        executor.add_node(player)
        threading.Thread(target=executor.spin, daemon=True).start()
        # The pipeline is up when it listens to the inputs and its outputs reach the recorder.
        _wait(lambda: all(p.get_subscription_count() > 0 for p in player.publishers_by_topic.values()),
              start_timeout_s, process, "subscribed to the bag's topics")
        _wait(lambda: recorder.publisher_count(DECODED_TOPIC) > 0, start_timeout_s, process,
              "its outputs connected to the recorder")
        time.sleep(0.5)  # let the remaining endpoint matches settle before the first frame
        start = time.monotonic()
        if loop_seconds > 0:
            stopper = threading.Timer(loop_seconds, player.stop_event.set)
            stopper.daemon = True
            stopper.start()
        player.play()
        seconds = time.monotonic() - start
        # Outputs still in flight: wait until they stop coming (or every image has its output).
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 1.5 and recorder.counts.get(DECODED_TOPIC, 0) < images[0]:
            if recorder.counts.get(DECODED_TOPIC, 0) != last:
                last, quiet_since = recorder.counts.get(DECODED_TOPIC, 0), time.monotonic()
            time.sleep(0.05)
        time.sleep(1.2)  # one more /diagnostics message with the final counters
        result = Replay(outputs, images[0], sent, seconds)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        if recorder is not None:
            recorder.finish(keep=result is not None)
        if player is not None:
            player.reader.close()
        rclpy.try_shutdown(context=context)
        if result is None and log:
            print("rgbd_pipeline said:\n" + "".join(log[-20:]), file=sys.stderr)
    return result


# ---------------------------------------------------------------------------------------------
# What the recorded outputs say: depth against the bag's depth, reconstruction, latency, drops.

def _pixels(msg) -> np.ndarray:
    from rgbd_vae_ros.conversion import image_to_numpy

    array = image_to_numpy(msg, copy=True)
    return array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array


def _by_stamp(reader, topic: str) -> dict[int, tuple[int, object]]:
    """header stamp -> (recorded time, message); the last one where a loop repeated a stamp."""
    if topic not in reader.topics:
        return {}
    return {stamp_ns(msg): (recorded, msg) for recorded, msg in reader.decoded(topic)}


def pipeline_diagnostics(replay: Replay) -> dict[str, str]:
    """The last values rgbd_pipeline reported on /diagnostics during the replay."""
    from rgbd_vae_ros.bags import BagReader

    with BagReader(replay.outputs) as out:
        return _last_diagnostics(out)


def _last_diagnostics(reader) -> dict[str, str]:
    values: dict[str, str] = {}
    for _, array in reader.decoded("/diagnostics") if "/diagnostics" in reader.topics else []:
        for status in array.status:
            if status.name.startswith("rgbd_pipeline"):
                values = {kv.key: kv.value for kv in status.values}
    return values


def content_metrics(input_bag: Path, outputs: Path, baseline_depth_m: float, max_frames_shown: int = 4,
                    baseline_rgb: np.ndarray | None = None):
    """What the outputs in ``outputs`` (a recording or ``bag process``) say about the models: depth
    against the input bag's measured depth (with the mean-depth baseline), reconstruction (with the
    PSNR of ``baseline_rgb``, the mean training image, where given), and the report picture.
    Returns (a JSON-ready dict, the picture or None)."""
    from rgbd_vae_ros.bags import BagReader
    from rgbd_vae_ros.processing import colorize_depth, resize_depth, resize_rgb

    from .figures import depth_scale_m, label_columns, tile_grid
    from .metrics import average, depth_error, depth_metrics, psnr

    with BagReader(input_bag) as bag:
        rgb_in = _by_stamp(bag, RGB_TOPIC)
        depth_in = _by_stamp(bag, DEPTH_TOPIC)
    with BagReader(outputs) as out:
        estimated = _by_stamp(out, f"{NAMESPACE}/depth/image")
        decoded_rgb = _by_stamp(out, DECODED_TOPIC)
        decoded_depth = _by_stamp(out, f"{NAMESPACE}/decoded/depth")
        latents = _by_stamp(out, f"{NAMESPACE}/latent")
    depth_stamps = np.array(sorted(depth_in))

    def true_depth(stamp: int) -> np.ndarray | None:
        """The bag's measured depth nearest in time to the image (the sensor's own pairing)."""
        nearest = int(depth_stamps[np.argmin(np.abs(depth_stamps - stamp))]) if depth_stamps.size else None
        if nearest is None or abs(nearest - stamp) > 50_000_000:
            return None
        return _pixels(depth_in[nearest][1])

    scores, baseline_scores, psnrs, baseline_psnrs, decoded_depth_scores, rows = [], [], [], [], [], []
    for stamp in sorted(estimated):
        gt = true_depth(stamp)
        if gt is None or stamp not in rgb_in:
            continue
        pred = _pixels(estimated[stamp][1])
        scores.append(depth_metrics(pred, gt))
        baseline_scores.append(depth_metrics(np.full_like(gt, baseline_depth_m), gt))
        rgb = _pixels(rgb_in[stamp][1])
        if stamp in decoded_rgb and stamp in decoded_depth:
            out_rgb, out_depth = _pixels(decoded_rgb[stamp][1]), _pixels(decoded_depth[stamp][1])
            psnrs.append(psnr(out_rgb, resize_rgb(rgb, *out_rgb.shape[:2])))
            if baseline_rgb is not None:
                if baseline_rgb.shape[:2] != out_rgb.shape[:2]:  # resized once, to the decoded images' size
                    baseline_rgb = resize_rgb(baseline_rgb, *out_rgb.shape[:2])
                baseline_psnrs.append(psnr(baseline_rgb, resize_rgb(rgb, *out_rgb.shape[:2])))
            decoded_depth_scores.append(depth_error(out_depth, resize_depth(gt, *out_depth.shape)))
            rows.append((rgb, gt, pred, out_rgb, out_depth))
    metrics = {
        "frames": {"images": len(rgb_in), "depth_estimates": len(estimated), "latents": len(latents),
                   "decoded": len(decoded_rgb)},
        "depth": {"protocol": "NYU: gt in (1e-3, 10) m, pred clamped to [1e-3, 10], Eigen crop, per-image mean; "
                              "gt = the bag's measured depth (registered, holes excluded)",
                  "estimated": average(scores),
                  "mean_depth_baseline": {"depth_m": baseline_depth_m, **average(baseline_scores)}},
        "reconstruction": {"rgb_psnr_db": float(np.mean(psnrs)) if psnrs else None,
                           "depth": average(decoded_depth_scores),
                           **({"mean_image_baseline": {"rgb_psnr_db": float(np.mean(baseline_psnrs))}}
                              if baseline_psnrs else {})},
        "latent": latent_summary([msg for _, msg in latents.values()]),
    }
    shown = [rows[i] for i in sorted({round(k * (len(rows) - 1) / max(1, max_frames_shown - 1))
                                      for k in range(max_frames_shown)})] if rows else []
    if not shown:
        return metrics, None
    scale_m = depth_scale_m([r[1] for r in shown], 10.0)
    tiles = [[rgb, colorize_depth(gt, scale_m), colorize_depth(pred, scale_m), out_rgb, colorize_depth(out_depth, scale_m)]
             for rgb, gt, pred, out_rgb, out_depth in shown]
    height = 160
    widths = [max(1, round(t.shape[1] * height / t.shape[0])) for t in tiles[0]]
    grid = label_columns(tile_grid(tiles, tile_height=height), widths=widths,
                         titles=["input RGB", "true depth", "estimated depth", "decoded RGB", "decoded depth"],
                         note=f"depth colour: blue near, red at {scale_m:g} m; black = no reading")
    return metrics, grid


def latent_summary(messages: list) -> dict:
    """What the latents (SPEC §4.3) read from a bag were: codec, dim, model, bytes per frame (data
    alone and the serialised message), and how many encoded measured, estimated or no depth."""
    from collections import Counter

    from rgbd_vae_ros.bags import typestore
    from rgbd_vae_ros.latent import parse_format

    if not messages:
        return {"frames": 0}
    formats = [parse_format(m.format) for m in messages]
    first, store = formats[0], typestore()
    return {"frames": len(messages), "codec": first.codec, "dim": first.dim, "model": first.model,
            "data_bytes": int(np.median([len(m.data) for m in messages])),
            "message_bytes": int(np.median([len(store.serialize_cdr(m, COMPRESSED)) for m in messages])),
            "depth": dict(Counter(f.depth for f in formats))}


def live_metrics(replay: Replay) -> dict:
    """What the live replay says about the node: frames played, answered and dropped, latency."""
    from rgbd_vae_ros.bags import BagReader

    with BagReader(replay.outputs) as out:
        decoded = len(_by_stamp(out, DECODED_TOPIC))
        diagnostics = _last_diagnostics(out)
    latencies = end_to_end_latencies_ms(replay)
    return {
        "frames": {"images_played": replay.played_images, "decoded": decoded,
                   "dropped": replay.played_images - decoded,
                   "node_frames_in": _int(diagnostics.get("frames_in")),
                   "node_frames_dropped": _int(diagnostics.get("frames_dropped")),
                   "node_frames_rejected": _int(diagnostics.get("frames_rejected"))},
        "latency_ms": {"end_to_end_median": _percentile(latencies, 50), "end_to_end_p95": _percentile(latencies, 95),
                       "node_median": _float(diagnostics.get("latency_median_ms")),
                       "node_p95": _float(diagnostics.get("latency_p95_ms")),
                       "measured": "end to end: image published by the player -> decoded image received by the "
                                   "recorder (wall clock); node: rgbd_pipeline's /diagnostics, receipt to publish"},
        "backend": diagnostics.get("backend"), "device": diagnostics.get("device"),
        "play_seconds": replay.seconds,
    }


def end_to_end_latencies_ms(replay: Replay) -> list[float]:
    """Per decoded image: received by the recorder minus when the player published that image
    (the latest publication before it, when a loop repeated the stamp)."""
    from rgbd_vae_ros.bags import BagReader

    latencies = []
    with BagReader(replay.outputs) as out:
        for received, msg in out.decoded(DECODED_TOPIC) if DECODED_TOPIC in out.topics else []:
            sent = [t for t in replay.image_sent_ns.get(stamp_ns(msg), []) if t <= received]
            if sent:
                latencies.append((received - max(sent)) / 1e6)
    return latencies


def _int(value) -> int | None:
    return int(value) if value not in (None, "") else None


def _float(value) -> float | None:
    return float(value) if value not in (None, "") else None


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
