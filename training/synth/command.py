"""``rgbd-vae synth``: write synthetic scenes in the NYU raw-folder, NYU labeled-.mat, TUM RGB-D or
7-Scenes layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


class SynthError(RuntimeError):
    """Synthetic data that could not be written."""


# --layout: module and writer function
LAYOUTS = {"nyu-raw": (".generate", "write_nyu_raw"), "nyu-mat": (".generate", "write_nyu_mat"),
           "tum": (".slam_layouts", "write_tum"), "7scenes": (".slam_layouts", "write_7scenes")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=list(LAYOUTS), required=True,
                        help="which layout to write (TUM and 7-Scenes with ground-truth poses)")
    parser.add_argument("--scenes", type=int, required=True, help="number of rooms")
    parser.add_argument("--frames", type=int, required=True, help="frames per room (30 Hz)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--width", type=int, default=640, help="image width (default 640, as the Kinect)")
    parser.add_argument("--height", type=int, default=480, help="image height (default 480)")


def run(args: argparse.Namespace) -> int:
    for name in ("scenes", "frames", "width", "height"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} is {getattr(args, name)}; expected at least 1")
    if args.width > 4096 or args.height > 4096:
        raise ValueError(f"--width/--height {args.width}x{args.height} is too large; expected at most 4096")
    from tqdm import tqdm

    from importlib import import_module

    from .generate import MARKER_NAME

    module, name = LAYOUTS[args.layout]
    write = getattr(import_module(module, __package__), name)
    total = args.scenes * args.frames
    start = time.perf_counter()
    with tqdm(total=total, unit="frame", desc=f"synth {args.layout}", disable=None) as bar:
        try:
            write(args.out, args.scenes, args.frames, seed=args.seed, width=args.width, height=args.height,
                  progress=lambda: bar.update(1))
        except OSError as exc:
            raise SynthError(f"cannot write into {str(args.out)!r}: {exc.strerror or exc}; the scenes finished "
                             f"before are whole and the data set is marked incomplete (no {MARKER_NAME})") from None
    seconds = time.perf_counter() - start
    print(f"wrote {total} frames of {args.scenes} scene(s) in the {args.layout} layout to {args.out} "
          f"({total / seconds:.2f} frames/s at {args.width}x{args.height})")
    return 0
