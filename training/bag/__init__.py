"""``rgbd-vae bag``: convert NYU, TUM RGB-D and 7-Scenes sequences to rosbag2, play a bag, record
topics, and run a bag's frames through a node offline (SPEC §9)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rgbd_vae_ros.bags import DEPTH_TOPIC, RGB_INFO_TOPIC, RGB_TOPIC, STORAGES


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
    intrinsics_help = "the camera's fx fy cx cy at the images' size, 0-based pixels (default: {})"
    tum = converter("from-tum", "DIR", "convert one TUM RGB-D sequence (rgb.txt, depth.txt, groundtruth.txt) to a "
                                       "rosbag2 with its ground-truth poses on /ground_truth/pose and /tf")
    tum.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                     help=intrinsics_help.format("TUM's calibration of the Freiburg sensor the folder name names"))
    seven = converter("from-7scenes", "DIR", "convert one 7-Scenes sequence (seq-XX of frame-XXXXXX.color.png, "
                                             ".depth.png, .pose.txt) to a rosbag2 with its ground-truth poses")
    seven.add_argument("--rate", type=_positive_hz, default=30.0,
                       help="frame rate the frames are stamped at, from their index (default 30)")
    seven.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                       help=intrinsics_help.format("the set's Kinect defaults 585 585 320 240 at 640x480, scaled"))
    converter("from-synth", "DIR", "convert the output of rgbd-vae synth (any layout) to a rosbag2")

    play = sub.add_parser("play", help="publish a bag's messages with their recorded timing",
                          description="publish a bag's messages with their recorded timing (the bag_player node)")
    play.add_argument("bag", type=Path, metavar="BAG")
    play.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument("--loop", action="store_true", help="start again at the end")
    play.add_argument("--clock", action="store_true", help="publish /clock with the bag's time")
    play.add_argument("--start-offset", type=float, default=0.0, help="seconds of the bag to skip")
    play.add_argument("--topics", nargs="+", default=[], help="only these topics (default all)")

    process = sub.add_parser(
        "process", help="every frame of a bag through a node's processing, offline, into a new bag",
        description="run every frame of a bag through the same processing as a node (same pairing of image, "
                    "depth and camera_info by stamp), offline: no DDS, no drops, deterministic; the outputs, with "
                    "the input headers, go to a new bag")
    process.add_argument("bag", type=Path, metavar="IN")
    process.add_argument("out", type=Path, metavar="OUT", help="the bag folder to write (must not exist)")
    process.add_argument("--model", type=Path, required=True, help="model file or folder of exported parts")
    process.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime", "torch"), default="auto")
    process.add_argument("--node", default="rgbd_pipeline",
                         choices=("rgbd_pipeline", "depth_estimator", "rgbd_encoder", "rgbd_decoder"),
                         help="whose processing to run (default rgbd_pipeline)")
    process.add_argument("--namespace", default="/rgbd_vae", help="prefix of the output topics (default /rgbd_vae)")
    for stream, default in (("image", RGB_TOPIC), ("depth", DEPTH_TOPIC), ("camera-info", RGB_INFO_TOPIC),
                            ("latent", "/rgbd_vae/latent")):
        process.add_argument(f"--{stream}-topic", default=default, help=f"input {stream} topic (default {default})")
    process.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                         help="a node parameter, e.g. -p sync_slop=0.03 (repeatable)")
    process.add_argument("--storage", choices=STORAGES, default="mcap", help="storage format (default mcap)")

    record = sub.add_parser("record", help="subscribe to topics and write them to a rosbag2",
                            description="subscribe to topics and write them to a rosbag2 until Ctrl-C or --duration")
    record.add_argument("out", type=Path, metavar="OUT", help="the bag folder to write (must not exist)")
    record.add_argument("topics", nargs="+", metavar="TOPIC")
    record.add_argument("--storage", choices=STORAGES, default="mcap", help="storage format (default mcap)")
    record.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")
    record.add_argument("--queue-size", type=int, default=100,
                        help="messages waiting to be written at most; more are dropped and counted (default 100)")


def _positive_hz(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive frame rate in Hz")
    return value


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
                       "duration": args.duration, "queue_size": args.queue_size})
    if args.action == "process":
        return _process(args)
    return _convert(args)


def _process(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rgbd_vae_ros.bags import BagReader

    from .process import process_bag, summary

    parameters = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"-p {item!r} is not NAME=VALUE")
        parameters[name] = value
    topics = {"image": args.image_topic, "depth": args.depth_topic, "camera_info": args.camera_info_topic,
              "latent": args.latent_topic}
    with BagReader(args.bag) as reader:
        main = topics["latent" if args.node == "rgbd_decoder" else "image"]
        total = reader.topics[main].count if main in reader.topics else 0
    start = time.perf_counter()
    with tqdm(total=total, unit="frame", desc=f"bag process ({args.node})", disable=None) as bar:
        result = process_bag(args.bag, args.out, args.model, backend=args.backend, executable=args.node,
                             topics=topics, parameters=parameters, namespace=args.namespace, storage=args.storage,
                             progress=lambda: bar.update(1))
    print(f"{summary(result)}; wrote {sum(result.topics.values())} messages on {len(result.topics)} topics to "
          f"{args.out} ({result.described.get('backend', '?')} on {result.described.get('device', '?')}) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .convert import detected_sequence, nyu_mat_sequence, nyu_raw_sequence, write_sequence

    if args.action == "from-nyu-raw":
        sequence = nyu_raw_sequence(args.source, args.scene)
    elif args.action == "from-tum":
        from .slam import tum_sequence

        sequence = tum_sequence(args.source, args.scene, intrinsics=args.intrinsics)
    elif args.action == "from-7scenes":
        from .slam import seven_scenes_sequence

        sequence = seven_scenes_sequence(args.source, args.scene, rate_hz=args.rate, intrinsics=args.intrinsics)
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
