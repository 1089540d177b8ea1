"""``rgbd-vae train {vae,depth} --config FILE --data PATH [--out DIR] [--resume] [KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=("vae", "depth"), help="what to train")
    parser.add_argument("--config", required=True,
                        help="YAML file, or a bundled config name such as tiny_vae or conv_vae")
    parser.add_argument("--data", required=True, help="data set: file or folder in any layout of SPEC §6")
    parser.add_argument("--out", default=None, help="output folder (default runs/<model name>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (the last epoch; OUT/best.pt is the best by validation)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="settings over the config file, e.g. train.lr=1e-4 model.latent_dim=64")


def run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .loop import CHECKPOINT_NAME, TrainingError, train

    config = load_config(args.config, args.overrides, task=args.task)
    out = Path(args.out or Path("runs") / config.model_name)
    if (out / CHECKPOINT_NAME).exists() and not args.resume:
        raise TrainingError(f"{str(out / CHECKPOINT_NAME)!r} exists; pass --resume to continue it "
                            "or choose another --out")
    result = train(config, args.data, out, resume=args.resume, progress=False if args.no_progress else None)
    summary = {"model": config.model_name, "steps": result.steps, "epochs": result.epochs,
               "first_loss": result.losses[0] if result.losses else None,
               "last_loss": result.losses[-1] if result.losses else None,
               "samples_per_s": round(result.samples_per_s, 2), "checkpoint": str(result.checkpoint),
               "best": str(result.best) if result.best else None,
               "frames": {"train": result.train_frames, "validation": result.validation_frames},
               "validation": result.validation[-1] if result.validation else None}
    if config.train.validate and not result.validation_frames:
        print(f"rgbd-vae train: no frames were held back to validate on (train.validation_share "
              f"{config.train.validation_share:g} of the training split's rooms rounds to none, or its frames are of "
              "one room), so every training frame trained and there is no best.pt", file=sys.stderr)
    print(json.dumps(summary))
    return 0
