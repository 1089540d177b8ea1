"""tiny_depth at several input sizes on the demo's rooms, and what its published depth holds (issue 15).

    OMP_NUM_THREADS=1 python -m rgbd_vae_training.bench.depth_aspect --data DIR --out DIR --sizes 64x80 72x96

For each size (``HxW``), one after the other in this process: ``tiny_depth`` trained on ``--data``
(the wall time of ``train``), scored by ``rgbd-vae eval depth`` on the held-out split (AbsRel, RMSE
and the mean-depth baseline), then exported and run through :class:`rgbd_vae_ros.stages.DepthStage`
on every held-out frame with its recorded geometry and with the geometry treated as unknown (every
pixel the model saw trusted): the share of pixels published (inside the node's default [0.1, 10] m),
the share published above 6 m (the unsupervised border the demo model used to paint 8-10 m into),
and AbsRel where published and true depth both exist.

Prints one JSON object per size and writes them all to OUT/result.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rgbd_vae_ros.files import atomic_write_text

from ..evaluate import evaluate
from ..export import export_checkpoint
from ..train.config import load_config
from ..train.loop import train

FAR_M = 6.0


def published_depth(folder: Path, data: str) -> dict:
    """What the exported depth model publishes on the held-out frames, geometry recorded vs unknown."""
    from rgbd_vae_ros.stages import DepthStage

    from ..data.detect import open_dataset

    stage = DepthStage.open(folder / "depth.onnx")
    frames = open_dataset(data, split="test")
    recorded = stage.info.depth_geometry
    rows = {"geometry": recorded}
    for name, geometry in (("recorded", recorded), ("unknown", None)):
        stage.info.depth_geometry = geometry
        published = far = total = 0
        errors = []
        for frame in frames:
            depth_m = stage(frame.rgb_u8)
            with np.errstate(invalid="ignore"):
                depth_m[(depth_m < 0.1) | (depth_m > 10.0)] = np.nan  # the node's min_depth, max_depth defaults
            ok = np.isfinite(depth_m)
            published, total, far = published + ok.sum(), total + ok.size, far + (depth_m[ok] > FAR_M).sum()
            both = ok & np.isfinite(frame.depth_m) & (frame.depth_m > 0)
            errors.append(np.abs(depth_m[both] - frame.depth_m[both]) / frame.depth_m[both])
        rows[name] = {"published_share": round(float(published / total), 4),
                      "published_above_6m_share": round(float(far / total), 4),
                      "abs_rel_where_published": round(float(np.concatenate(errors).mean()), 4)}
    stage.close()
    return rows


def _size(text: str) -> tuple[int, int]:
    """'HxW' as (H, W), both positive; argparse turns the error into one line and exit 2."""
    parts = text.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size HxW of positive whole numbers (e.g. 72x96)")
    return int(parts[0]), int(parts[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NYU raw-layout rooms, whose registered depth has a border "
                        "(the demo's rooms in that layout: rgbd-vae synth --layout nyu-raw ...)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(64, 80), (72, 96)], help="input sizes HxW")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for height, width in args.sizes:
        size = f"{height}x{width}"
        config = load_config("tiny_depth", [f"model.input_height={height}", f"model.input_width={width}"])
        started = time.perf_counter()
        run = train(config, args.data, out / f"run_{size}", progress=False)
        train_s = time.perf_counter() - started
        scores = evaluate("depth", str(run.checkpoint), args.data, out / f"eval_{size}")
        export_checkpoint(str(run.checkpoint), out / f"export_{size}")
        row = {"size": size, "train_s": round(train_s, 1), "abs_rel": round(scores["depth"]["abs_rel"], 4),
               "rmse": round(scores["depth"]["rmse"], 4),
               "mean_depth_baseline_abs_rel": round(scores["mean_depth_baseline"]["abs_rel"], 4),
               "held_out_frames": scores["images"], **published_depth(out / f"export_{size}", args.data)}
        print(json.dumps(row), flush=True)
        results.append(row)
    atomic_write_text(out / "result.json", json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
