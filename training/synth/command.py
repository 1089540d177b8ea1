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
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--layout", choices=list(LAYOUTS),
                      help="which layout to write (TUM and 7-Scenes with ground-truth poses)")
    what.add_argument("--walk", choices=["revisit"],
                      help="revisit: one NYU raw scene folder of a walk that visits --rooms rooms, then comes back "
                           "to each once per view-change bin (0-12, 12-48, 48-90 degrees), with places.csv "
                           "(room, visit, pose, view change per frame) beside the frames")
    parser.add_argument("--scenes", type=int, help="number of rooms (with --layout)")
    parser.add_argument("--frames", type=int, help="frames per room, 30 Hz (with --layout)")
    parser.add_argument("--rooms", type=int, help="number of rooms (with --walk)")
    parser.add_argument("--frames-per-visit", type=int, help="frames per visit, 30 Hz (with --walk)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (what an earlier synth wrote there is replaced; other files stay)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--width", type=int, default=640, help="image width (default 640, as the Kinect)")
    parser.add_argument("--height", type=int, default=480, help="image height (default 480)")
    parser.add_argument("--ir-shadows", action="store_true",
                        help="nyu-raw: no depth reading where the Kinect's IR projector cannot reach (a band left "
                             "of foreground edges), as real raw frames have; off by default")
    parser.add_argument("--style", choices=["train", "varied", "unseen"], default="train",
                        help="the ranges scenes are drawn from (docs/synthetic_data.md): train (default), varied "
                             "(camera heights, pitches and rolls, room layout, textures, lighting and sensor effects "
                             "varied) or unseen (every varied setting outside both, for held-out frames)")
    parser.set_defaults(synth_parser=parser)


def _check_pairing(args: argparse.Namespace) -> None:
    """--scenes/--frames go with --layout, --rooms/--frames-per-visit with --walk, --ir-shadows with
    --layout nyu-raw and --style with --layout (exit 2 otherwise)."""
    wanted, other = ((("scenes", "frames"), ("rooms", "frames_per_visit")) if args.layout
                     else (("rooms", "frames_per_visit"), ("scenes", "frames")))
    mode = "--layout" if args.layout else "--walk"
    missing = [name for name in wanted if getattr(args, name) is None]
    extra = [name for name in other if getattr(args, name) is not None]
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    if missing:
        args.synth_parser.error(f"{mode} needs {' and '.join(flag(n) for n in missing)}")
    if extra:
        args.synth_parser.error(f"{' and '.join(flag(n) for n in extra)} cannot be used with {mode}")
    if getattr(args, "ir_shadows", False) and args.layout != "nyu-raw":
        args.synth_parser.error("--ir-shadows is for --layout nyu-raw")
    if getattr(args, "style", "train") != "train" and not args.layout:
        args.synth_parser.error("--style is for --layout (a revisit walk draws its rooms from the training style)")


def run(args: argparse.Namespace) -> int:
    _check_pairing(args)
    counts = ("scenes", "frames") if args.layout else ("rooms", "frames_per_visit")
    for name in (*counts, "width", "height"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} is {getattr(args, name)}; expected at least 1")
    if args.width > 4096 or args.height > 4096:
        raise ValueError(f"--width/--height {args.width}x{args.height} is too large; expected at most 4096")
    from tqdm import tqdm

    from importlib import import_module

    from .generate import MARKER_NAME

    shadows = {"ir_shadows": True} if getattr(args, "ir_shadows", False) else {}
    style = getattr(args, "style", "train")
    if style != "train":
        shadows["style"] = style
    if args.layout:
        module, name = LAYOUTS[args.layout]
        write = getattr(import_module(module, __package__), name)
        total, what, sizes = args.scenes * args.frames, f"{args.scenes} scene(s) in the {args.layout} layout", \
            (args.scenes, args.frames)
    else:
        from .revisit import VIEW_CHANGE_BINS_DEG, write_nyu_raw_revisit

        write, sizes = write_nyu_raw_revisit, (args.rooms, args.frames_per_visit)
        total = args.rooms * (1 + len(VIEW_CHANGE_BINS_DEG)) * args.frames_per_visit
        what = f"a walk revisiting {args.rooms} room(s) {len(VIEW_CHANGE_BINS_DEG)} times (NYU raw layout, places.csv)"
    start = time.perf_counter()
    with tqdm(total=total, unit="frame", desc=f"synth {args.layout or args.walk}", disable=None) as bar:
        try:
            write(args.out, *sizes, seed=args.seed, width=args.width, height=args.height,
                  progress=lambda: bar.update(1), **shadows)
        except OSError as exc:
            raise SynthError(f"cannot write into {str(args.out)!r}: {exc.strerror or exc}; the scenes finished "
                             f"before are whole and the data set is marked incomplete (no {MARKER_NAME})") from None
    seconds = time.perf_counter() - start
    print(f"wrote {total} frames of {what} to {args.out} "
          f"({total / seconds:.2f} frames/s at {args.width}x{args.height})")
    return 0
