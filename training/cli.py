"""The ``rgbd-vae`` command line (SPEC §7.1).

Exit status: 0 on success, 2 on bad arguments (argparse), 1 on any other error, with the
reason on stderr in one sentence. Each subcommand lives in its own module, imported only when
it runs, so ``rgbd-vae --help`` stays fast and needs no torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from collections.abc import Sequence

# name -> (module that provides `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("rgbd_vae_training.synth.command", "write synthetic indoor RGB-D scenes in the NYU layouts"),
    "train": ("rgbd_vae_training.train.command", "train a VAE or a depth model from a YAML config"),
    "eval": ("rgbd_vae_training.evaluate", "evaluate a checkpoint: NYU depth protocol or VAE reconstruction"),
    "export": ("rgbd_vae_training.export", "export a checkpoint's parts to ONNX with metadata and parity check"),
    "engine": ("rgbd_vae_training.engine", "build a TensorRT engine from an exported ONNX file"),
    "bag": ("rgbd_vae_training.bag", "convert NYU sequences to rosbag2, play a bag, record topics"),
    "bench": ("rgbd_vae_training.bench", "measure conversion, backends, training, the pipeline and frame transport"),
    "demo": ("rgbd_vae_training.demo", "run the whole system on synthetic data into demo_out/"),
}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors end in one sentence and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rgbd-vae", description="Train, evaluate, export and benchmark rgbd_vae_ros models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def _one_sentence(exc: BaseException) -> str:
    text = str(exc)
    # torch's DataLoader raises a worker's error again with the worker's traceback in its message:
    # "Caught X in DataLoader worker process N. Original Traceback ...", ending "module.X: message"
    if "Original Traceback (most recent call last):" in text:
        raised = re.search(r"^[\w.]+: (.*)\Z", text.strip(), re.MULTILINE | re.DOTALL)
        text = raised.group(1) if raised else text
    text = " ".join(text.split()) or type(exc).__name__
    return text if text.endswith((".", "?", "!")) else text + "."


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, letting KEY=VALUE overrides sit anywhere after the subcommand (argparse alone only
    takes them before the first option)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    check = getattr(args, "check_arguments", None)  # option combinations argparse cannot express
    problem = check(args) if check is not None else None
    if problem:
        parser.error(f"{args.command}: {problem}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"rgbd-vae {args.command}: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # the boundary: every failure becomes one sentence and status 1
        if os.environ.get("RGBD_VAE_DEBUG"):
            traceback.print_exc()
        print(f"rgbd-vae {args.command}: error: {_one_sentence(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
