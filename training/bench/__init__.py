"""``rgbd-vae bench``: benchmarks that report on the machine they run on (SPEC §10)."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from rgbd_vae_ros.files import atomic_write_text

_BENCHMARKS = ("conversion", "training", "backends", "pipeline", "transport", "codec")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", choices=_BENCHMARKS, help="what to measure")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per case after warm-up (default 200; backends 50; training 5 steps)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="training / backends: the models to time (default all / conv_vae unet_depth); "
                             "backends also takes checkpoint files (.pt), e.g. trained models for INT8 accuracy")
    parser.add_argument("--backends", nargs="+", choices=("onnxruntime", "torch", "tensorrt"),
                        help="pipeline: backends to run (default onnxruntime torch)")
    parser.add_argument("--model-dir", type=Path, help="pipeline: folder of depth/encoder/decoder models "
                        "(default: the demo's tiny models, the default ones and fast_depth + tiny_vae, built with "
                        "fresh weights; --bag: the default ones)")
    parser.add_argument("--seconds", type=float, default=10.0, help="pipeline: seconds of input per backend")
    parser.add_argument("--bag", type=Path, help="pipeline: replay this bag (looped) into the rgbd_pipeline "
                        "executable instead of feeding synthetic frames in process")
    parser.add_argument("--batch", type=int, default=8, help="training: batch size (default 8)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="training / backends: where to run")
    parser.add_argument("--data", type=Path, help="codec: training data the PCA baseline is fit on (default: the "
                        "demo's training rooms in --out, synthesised if absent)")
    parser.add_argument("--out", type=Path, default=Path("codec_bench_out"),
                        help="codec: folder for the demo VAE when --model-dir is not given, codec.json and codec.png")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")


def machine_description() -> dict:
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "system": platform.platform()}


def run(args: argparse.Namespace) -> int:
    if args.runs is not None and args.runs < 1:
        raise ValueError(f"--runs is {args.runs}; expected at least 1")
    if args.batch < 1:
        raise ValueError(f"--batch is {args.batch}; expected at least 1")
    if args.seconds <= 0:
        raise ValueError(f"--seconds is {args.seconds:g}; expected more than 0")
    if args.benchmark == "training":
        results = _training(args)
    elif args.benchmark == "backends":
        results = _backends(args)
    elif args.benchmark == "pipeline":
        results = _pipeline(args)
    elif args.benchmark == "transport":
        results = _transport(args)
    elif args.benchmark == "codec":
        results = _codec(args)
    else:
        from .conversion import bench_conversion
        from .timing import format_table

        runs = args.runs or 200
        timings = bench_conversion(runs=runs)
        print(f"message conversion, one 640x480 frame, {runs} runs each ({platform.machine()}):")
        print(format_table(timings))
        results = [t.as_dict() for t in timings]
    if args.json:
        result = {"benchmark": args.benchmark, "machine": machine_description(), "results": results}
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def _codec(args: argparse.Namespace) -> list[dict]:
    from .codec import bench_codec, format_rows, plot, smallest_within

    data = args.data
    model_dir = args.model_dir
    if model_dir is None or data is None:
        from ..demo import train_or_reuse, vae_rooms
        from ..export import export_checkpoint
        from ..train.config import load_config

        rooms = vae_rooms(args.out)
        data = data or rooms
        if model_dir is None:
            checkpoint = train_or_reuse("tiny_vae", load_config("tiny_vae"), rooms, args.out / "models" / "vae")
            model_dir = args.out / "models" / "onnx"
            export_checkpoint(str(checkpoint), model_dir, data=str(rooms))
    frames = args.runs or 40
    rows = bench_codec(model_dir, data, frames)
    print(f"codes of {frames} held-out synthetic 640x480 frames, bytes per frame and quality "
          f"(VAE in {model_dir}; baselines fit on {data}):")
    print(format_rows(rows))
    print(f"smallest latent codec within 0.2 dB of f32 (the default latent_codec, SPEC §10): "
          f"{smallest_within(rows)}")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "codec.json", json.dumps(rows, indent=2) + "\n")
    plot(rows, args.out / "codec.png")
    print(f"wrote {args.out / 'codec.json'} and {args.out / 'codec.png'}")
    return rows


def _check_models(names: list[str] | None) -> None:
    from rgbd_vae_ros.models import model_names

    unknown = sorted(set(names or []) - set(model_names()))
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; expected some of {', '.join(model_names())}")


def _backends(args: argparse.Namespace) -> list[dict]:
    from .backends import bench_backends, format_rows

    _check_models([m for m in args.models or [] if not m.endswith((".pt", ".pth"))])  # files: checkpoints
    runs = args.runs or 50
    rows = bench_backends(args.models, runs=runs, device=args.device)
    print(f"backend latency, batch 1, {runs} runs after 5 warm-up runs ({platform.machine()}); INT8 accuracy "
          "on held-out synthetic rooms:")
    print(format_rows(rows))
    return rows


def _pipeline(args: argparse.Namespace) -> list[dict]:
    from .pipeline import bench_pipeline, format_rows

    backends = args.backends or ["onnxruntime", "torch"]
    if args.bag:
        from .pipeline import bench_pipeline_bag

        rows = bench_pipeline_bag(backends, args.bag, models=args.model_dir, seconds=args.seconds)
        print(f"rgbd_pipeline fed by bag_player replaying {args.bag} (looped) for {args.seconds:g} s per backend "
              f"({platform.machine()}):")
        print(format_rows(rows))
        return rows
    rows = bench_pipeline(backends, models=args.model_dir, seconds=args.seconds)
    print(f"rgbd_pipeline, 640x480 rgb8 at 30 Hz for {args.seconds:g} s per model set and backend, next to its "
          f"stages alone on the same frame ({platform.machine()}, {os.cpu_count()} CPUs):")
    print(format_rows(rows))
    return rows


def _transport(args: argparse.Namespace) -> list[dict]:
    from .transport import bench_transport, format_rows

    frames = args.runs or 150
    rows = bench_transport(frames=frames)
    print(f"640x480 rgb8 at 30 Hz from a publisher in another process into depth_estimator, {frames} frames "
          f"({platform.machine()}):")
    print(format_rows(rows))
    return rows


def _training(args: argparse.Namespace) -> list[dict]:
    from .training import bench_training, format_rows, layout_speedups

    _check_models(args.models)
    rows = bench_training(args.models, batch=args.batch, steps=args.runs or 5, device=args.device)
    print(f"training throughput, default configs, batch {args.batch}, median of {args.runs or 5} steps:")
    print(format_rows(rows))
    for line in layout_speedups(rows):
        print(line)
    return rows
