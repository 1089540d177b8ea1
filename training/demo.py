"""``rgbd-vae demo``: the whole system on synthetic data, outputs in ``demo_out/`` (SPEC §9).

1. synthesise a short NYU raw sequence (through 6 unseen rooms, 640x480, 30 Hz) and 100 small
   training rooms in the NYU labeled layout (1000 for the VAE);
2. train ``tiny_depth`` and ``tiny_vae`` (or reuse them from ``demo_out/models``), evaluate them
   on held-out rooms and export ONNX;
3. convert the sequence to a rosbag2, play it into ``rgbd_pipeline`` on ONNX Runtime and record
   every output to ``demo_out/outputs``; run every frame through the same processing offline
   (``rgbd-vae bag process``) into ``demo_out/processed``;
4. write ``demo_out/metrics.json`` (quality over every frame from the offline run, drops and
   latency from the live one) and ``demo_out/report.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rgbd_vae_ros.files import atomic_write_text

# The replayed sequence: a camera carried through 6 rooms the models never saw (the training rooms
# use another seed), 8 frames each, as one 30 Hz recording of 1.6 s. Several rooms, because how
# well a tiny model guesses a room's scale varies from room to room.
SEQUENCE = {"rooms": 6, "frames_per_room": 8, "seed": 0, "width": 640, "height": 480}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument("--vae-config", default="tiny_vae_places",
                        help="the VAE's training config, a bundled name or a YAML file (default tiny_vae_places: "
                             "tiny_vae with a place term, whose walk the demo makes)")


def run(args: argparse.Namespace) -> int:
    from rgbd_vae_training.train.config import load_config

    load_config(args.vae_config)  # a bad --vae-config is one sentence now, not after minutes of synthesis and training
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    sequence = synthesise_sequence(out)
    models = train_tiny_models(out, args.vae_config)
    evaluate_tiny_models(out, models)
    onnx = export_tiny_models(out, models)
    bag = convert_sequence(sequence, out / "bag")
    metrics, report = replay_and_report(out, bag, onnx)
    depth, baseline = metrics["depth"]["estimated"], metrics["depth"]["mean_depth_baseline"]
    frames, live = metrics["frames"], metrics["frames"]["live"]
    reconstruction = metrics["reconstruction"]
    print(f"demo: every frame ({frames['processed']} of {frames['images']}): depth AbsRel {depth['abs_rel']:.3f} vs "
          f"{baseline['abs_rel']:.3f} for the mean depth; RGB PSNR {reconstruction['rgb_psnr_db']:.1f} dB vs "
          f"{reconstruction['mean_image_baseline']['rgb_psnr_db']:.1f} dB for the mean image")
    latent = metrics["latent"]
    print(f"demo: latent codes: {latent['codec']}, {latent['data_bytes']} bytes of data per frame "
          f"({latent['message_bytes']} bytes serialised, header included), depth encoded: "
          + ", ".join(f"{k} {v}" for k, v in sorted(latent["depth"].items())))
    print(f"demo: live replay at 30 Hz: {live['decoded']} of {live['images_played']} images decoded ({live['dropped']} "
          f"dropped, {live['node_frames_dropped']} of them by the node's keep-latest worker); end-to-end latency "
          f"median {metrics['latency_ms']['end_to_end_median']:.0f} ms")
    print(f"demo: wrote {out / 'metrics.json'} and {report}; recorded outputs in {out / 'outputs'} "
          f"(took {time.monotonic() - started:.0f} s)")
    return 0


def synthesise_once(folder: Path, layout: str, settings: dict, write, what: str, making: str,
                    shown: Path | None = None) -> Path:
    """``write(folder, **settings)`` unless a finished synth of those settings is in ``folder`` (not one
    killed or out of disk part way); says which, naming ``what`` is reused or ``making`` is made.
    Returns ``folder``."""
    from rgbd_vae_training.synth.generate import is_complete

    shown = shown or folder
    if is_complete(folder, layout, **settings):
        print(f"demo: reusing {what} in {shown}")
    else:
        print(f"demo: synthesising {making} into {shown}")
        write(folder, **settings)
    return folder


def synthesise_sequence(out: Path) -> Path:
    from rgbd_vae_training.synth.generate import write_nyu_raw_walk

    data, frames = out / "data" / "sequence", SEQUENCE["rooms"] * SEQUENCE["frames_per_room"]
    scene = data / "synth_walk"
    synthesise_once(data, "nyu-raw-walk", SEQUENCE, write_nyu_raw_walk, "the synthetic NYU raw sequence",
                    f"{frames} frames through {SEQUENCE['rooms']} rooms (640x480, NYU raw layout)", shown=scene)
    return scene


# The depth model's training rooms: many short scenes, so held-out rooms differ from the training
# ones, in the labeled layout: RGB and depth of one moment, depth over the whole frame, so the model is
# taught everywhere it estimates (NYU raw's registered depth leaves a border no reading supervises).
TRAINING_ROOMS = {"scenes": 100, "frames": 1, "seed": 11, "width": 128, "height": 96}


def train_tiny_models(out: Path, vae_config: str = "tiny_vae_places") -> dict[str, Path]:
    """Train ``tiny_depth`` and the VAE (``vae_config``) on synthetic rooms, or reuse the checkpoints
    already in ``out``."""
    from rgbd_vae_training.train.config import load_config

    depth = train_or_reuse("tiny_depth", load_config("tiny_depth"), training_rooms(out), out / "models" / "depth")
    config = load_config(vae_config)
    if getattr(config.loss, "place_weight", 0.0) > 0 and not config.train.place_data:
        config.train.place_data = str(vae_walk(out))  # the place term's views: the demo's own walk
    vae = train_or_reuse(str(vae_config), config, vae_rooms(out), out / "models" / "vae")
    return {"depth": depth, "vae": vae}


def training_rooms(out: Path) -> Path:
    """The depth model's training rooms in ``out/data/rooms``, synthesised unless a finished synth of
    them is there."""
    from rgbd_vae_training.synth.generate import write_nyu_mat

    return synthesise_once(out / "data" / "rooms", "nyu-mat", TRAINING_ROOMS, write_nyu_mat, "the training rooms",
                           f"{TRAINING_ROOMS['scenes']} training rooms ({TRAINING_ROOMS['width']}x{TRAINING_ROOMS['height']}, "
                           "NYU labeled layout)")


# The VAE's training rooms: ten times the depth model's, in the labeled layout (RGB and depth of one
# moment, depth over the whole frame). A 64-number code of unseen rooms needs them: trained on 55
# frames of rooms it beat neither PCA nor a thumbnail at equal bytes on held-out frames, on 550 it
# does better on both (issue 16; docs/benchmarks.md, "Codes at equal bytes").
VAE_ROOMS = {"scenes": 1000, "frames": 1, "seed": 11, "width": 128, "height": 96}
VAE_ROOMS_FOLDER = "vae_rooms"


def vae_rooms(out: Path) -> Path:
    """The VAE's training rooms in ``out/data/vae_rooms``, synthesised unless a finished synth of them is there."""
    from rgbd_vae_training.synth.generate import write_nyu_mat

    return synthesise_once(out / "data" / VAE_ROOMS_FOLDER, "nyu-mat", VAE_ROOMS, write_nyu_mat,
                           "the VAE's training rooms",
                           f"{VAE_ROOMS['scenes']} training rooms for the VAE (128x96, NYU labeled layout)")


# The views of the VAE's place term (tiny_vae_places's loss.place_weight): a walk through 2000 rooms, each
# seen on four visits turned 0-90 deg, one frame a visit. At 3000 steps 500 rooms found rooms revisited
# 12-48 deg off at recall@1 0.80, 2000 at 0.86 (docs/benchmarks.md, "Place recognition").
VAE_WALK = {"rooms": 2000, "frames_per_visit": 1, "seed": 11, "width": 128, "height": 96}
VAE_WALK_FOLDER = "vae_walk"


def vae_walk(out: Path) -> Path:
    """The VAE's revisit walk in ``out/data/vae_walk``, synthesised unless a finished synth of it is there."""
    from rgbd_vae_training.synth.revisit import write_nyu_raw_revisit

    return synthesise_once(out / "data" / VAE_WALK_FOLDER, "nyu-raw-revisit", VAE_WALK, write_nyu_raw_revisit,
                           "the VAE's revisit walk",
                           f"a walk revisiting {VAE_WALK['rooms']} rooms for the VAE's place term "
                           "(128x96, NYU raw layout)")


def train_or_reuse(name: str, config, data: Path, folder: Path) -> Path:
    """The checkpoint of ``config`` in ``folder``: reused only when its run trained to the end;
    a run of the same config stopped part way (a killed demo) resumes; anything else trains afresh."""
    from rgbd_vae_ros.models import ModelError, load_checkpoint
    from rgbd_vae_training.train.config import is_config_of
    from rgbd_vae_training.train.loop import CHECKPOINT_NAME, is_finished, train

    checkpoint = folder / CHECKPOINT_NAME
    if is_finished(checkpoint, config):
        print(f"demo: reusing {checkpoint} (trained to the end)")
        return checkpoint
    try:
        stopped = load_checkpoint(checkpoint)
        resume = is_config_of(stopped.get("config"), config)
    except ModelError:
        resume = False
    if resume:
        print(f"demo: resuming {name} in {folder} from step {stopped['step']} (its run was stopped)")
    else:
        checkpoint.unlink(missing_ok=True)  # unreadable or of another config: train it again
        print(f"demo: training {name} into {folder}")
    result = train(config, data, folder, resume=resume)
    if result.losses:
        print(f"demo: {name}: loss {result.losses[0]:.4g} -> {result.losses[-1]:.4g} "
              f"in {len(result.losses)} steps, {result.samples_per_s:.1f} samples/s")
    return checkpoint


def evaluate_tiny_models(out: Path, checkpoints: dict[str, Path]) -> None:
    from rgbd_vae_training.evaluate import evaluate

    depth = evaluate("depth", str(checkpoints["depth"]), str(out / "data" / "rooms"), out / "eval" / "depth")
    vae = evaluate("vae", str(checkpoints["vae"]), str(out / "data" / VAE_ROOMS_FOLDER), out / "eval" / "vae")
    print(f"demo: held-out rooms: depth AbsRel {depth['depth']['abs_rel']:.3f} "
          f"(mean-depth baseline {depth['mean_depth_baseline']['abs_rel']:.3f}); "
          f"VAE RGB PSNR {vae['rgb']['psnr_db']:.1f} dB (mean image {vae['mean_image_baseline']['psnr_db']:.1f} dB); "
          f"figures in {out / 'eval'}")


def export_tiny_models(out: Path, checkpoints: dict[str, Path]) -> Path:
    """ONNX files for the pipeline: depth.onnx, encoder.onnx, decoder.onnx in ``out/models/onnx``; the
    VAE's latent quantiser table is fit on the training rooms it was trained on."""
    from rgbd_vae_training.export import export_checkpoint

    folder = out / "models" / "onnx"
    for task in ("depth", "vae"):
        data = str(out / "data" / VAE_ROOMS_FOLDER) if task == "vae" else None
        for row in export_checkpoint(str(checkpoints[task]), folder, data=data):
            print(f"demo: exported {row['file']} (ONNX Runtime vs torch max abs error {row['max_abs_error']:.2g})")
    return folder


def convert_sequence(scene: Path, bag: Path) -> Path:
    from .bag.convert import nyu_raw_sequence, write_sequence

    counts = write_sequence(nyu_raw_sequence(scene), bag, overwrite=True)
    print(f"demo: converted the sequence to {bag} (MCAP; {', '.join(f'{t} {n}' for t, n in sorted(counts.items()))})")
    return bag


def replay_and_report(out: Path, bag: Path, models: Path) -> tuple[dict, Path]:
    """Latency and drops from a live replay into rgbd_pipeline; depth and reconstruction quality
    from ``bag process`` over every frame (the same processing, offline and deterministic)."""
    from .bag.process import process_bag
    from .data import open_dataset
    from .evaluate import mean_depth, mean_image
    from .figures import write_png
    from .replay import content_metrics, live_metrics, replay_through_pipeline

    print(f"demo: playing {bag} into rgbd_pipeline (ONNX Runtime) and recording every output to {out / 'outputs'}")
    live = live_metrics(replay_through_pipeline(bag, models, out / "outputs", backend="onnxruntime"))
    print(f"demo: processing every frame of {bag} offline (rgbd-vae bag process) into {out / 'processed'}")
    processed = process_bag(bag, out / "processed", models, backend="onnxruntime", overwrite=True)
    baseline_m = mean_depth(open_dataset(out / "data" / "rooms", split="train"))
    baseline_rgb = mean_image(open_dataset(out / "data" / VAE_ROOMS_FOLDER, split="train"))  # the VAE's rooms
    content, figure = content_metrics(bag, out / "processed", baseline_m, baseline_rgb=baseline_rgb)
    metrics = {
        "measured": "depth and reconstruction: every frame through rgbd-vae bag process; frames dropped and "
                    "latency: the live replay into the rgbd_pipeline process",
        "depth": content["depth"], "reconstruction": content["reconstruction"],
        "frames": {**content["frames"], "processed": processed.frames_out, "live": live["frames"]},
        "latent": content["latent"],
        "latency_ms": live["latency_ms"], "backend": live["backend"], "device": live["device"],
        "play_seconds": live["play_seconds"],
        "models": {part: str(models / f"{part}.onnx") for part in ("depth", "encoder", "decoder")},
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if figure is None:
        raise RuntimeError("rgbd-vae bag process produced no complete output to show")
    write_png(out / "report.png", figure)
    return metrics, out / "report.png"
