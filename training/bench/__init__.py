"""``rgbd-vae bench``: benchmarks that report on the machine they run on (SPEC §10)."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from rgbd_vae_training.io import atomic_write_text

# Benchmarks that exist; the others say which part of the project brings them.
_BENCHMARKS = ("conversion",)
_PENDING = {
    "backends": "arrives with the ONNX export and inference backends",
    "pipeline": "arrives with the ROS 2 nodes",
    "codec": "arrives with the ONNX export and inference backends",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", choices=[*_BENCHMARKS, *_PENDING], help="what to measure")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per case after warm-up (default 200)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")


def machine_description() -> dict:
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "system": platform.platform()}


def run(args: argparse.Namespace) -> int:
    if args.benchmark in _PENDING:
        raise RuntimeError(f"benchmark {args.benchmark!r} is not available yet; it {_PENDING[args.benchmark]}")
    if args.runs < 1:
        raise ValueError(f"--runs is {args.runs}; expected at least 1")
    from .conversion import bench_conversion
    from .timing import format_table

    timings = bench_conversion(runs=args.runs)
    print(f"message conversion, one 640x480 frame, {args.runs} runs each ({platform.machine()}):")
    print(format_table(timings))
    if args.json:
        result = {"benchmark": "conversion", "machine": machine_description(),
                  "results": [t.as_dict() for t in timings]}
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0
