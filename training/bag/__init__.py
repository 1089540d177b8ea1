"""``rgbd-vae bag``: convert NYU sequences to rosbag2, play a bag, record topics (SPEC §9)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rgbd_vae_ros.bags import STORAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def converter(name: str, source: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("source", type=Path, metavar=source)
        p.add_argument("out", type=Path, metavar="OUT", help="the bag folder to write (must not exist)")
        p.add_argument("--storage", choices=STORAGES, default="mcap", help="storage format (default mcap)")
        p.add_argument("--scene", help="the scene to convert when the source holds several")
        return p

    converter("from-nyu-raw", "SCENE_DIR", "convert one NYU raw scene folder (r-*.ppm, d-*.pgm) to a rosbag2")
    mat = converter("from-nyu-mat", "MAT_FILE", "convert the NYU labeled .mat to a rosbag2 (frames stamped at 30 Hz)")
    mat.add_argument("--split", choices=("train", "test"), help="only this split of splits.mat")
    mat.add_argument("--filled-depth", action="store_true",
                     help="write the in-painted 'depths' instead of the measured 'rawDepths'")
    converter("from-synth", "DIR", "convert the output of rgbd-vae synth (either layout) to a rosbag2")

    play = sub.add_parser("play", help="publish a bag's messages with their recorded timing",
                          description="publish a bag's messages with their recorded timing (the bag_player node)")
    play.add_argument("bag", type=Path, metavar="BAG")
    play.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument("--loop", action="store_true", help="start again at the end")
    play.add_argument("--clock", action="store_true", help="publish /clock with the bag's time")
    play.add_argument("--start-offset", type=float, default=0.0, help="seconds of the bag to skip")
    play.add_argument("--topics", nargs="+", default=[], help="only these topics (default all)")

    record = sub.add_parser("record", help="subscribe to topics and write them to a rosbag2",
                            description="subscribe to topics and write them to a rosbag2 until Ctrl-C or --duration")
    record.add_argument("out", type=Path, metavar="OUT", help="the bag folder to write (must not exist)")
    record.add_argument("topics", nargs="+", metavar="TOPIC")
    record.add_argument("--storage", choices=STORAGES, default="mcap", help="storage format (default mcap)")
    record.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    if args.action == "play":
        from rgbd_vae_ros.nodes.bag_player import play

        return play({"bag": str(args.bag), "rate": args.rate, "loop": args.loop, "clock": args.clock,
                     "start_offset": args.start_offset, "topics": args.topics})
    if args.action == "record":
        from rgbd_vae_ros.nodes.bag_recorder import record

        if args.duration < 0:
            raise ValueError(f"--duration is {args.duration:g}; expected 0 (until Ctrl-C) or more")
        return record({"bag": str(args.out), "topics": args.topics, "storage": args.storage,
                       "duration": args.duration})
    return _convert(args)


def _convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .convert import detected_sequence, nyu_mat_sequence, nyu_raw_sequence, write_sequence

    if args.action == "from-nyu-raw":
        sequence = nyu_raw_sequence(args.source, args.scene)
    elif args.action == "from-nyu-mat":
        sequence = nyu_mat_sequence(args.source, split=args.split, scene=args.scene, filled_depth=args.filled_depth)
    else:
        sequence = detected_sequence(args.source, args.scene)
    start = time.perf_counter()
    with tqdm(total=sequence.count, unit="frame", desc=f"bag {args.action}", disable=None) as bar:
        counts = write_sequence(sequence, args.out, args.storage, progress=lambda: bar.update(1))
    seconds = time.perf_counter() - start
    print(f"wrote {sequence.description} to {args.out} ({args.storage}, {sum(counts.values())} messages on "
          f"{len(counts)} topics) in {seconds:.1f} s")
    return 0
