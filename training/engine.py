"""``rgbd-vae engine --onnx FILE --out FILE [--fp16] [--int8 --calib DIR]``: a TensorRT engine,
reused (never rebuilt) when ``--out`` already matches this ONNX file, TensorRT, GPU and precision."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, help="a file written by rgbd-vae export")
    parser.add_argument("--out", required=True, help="the engine file (.engine or .plan); metadata goes to OUT.json")
    parser.add_argument("--fp16", action="store_true", help="allow FP16 kernels")
    parser.add_argument("--int8", action="store_true", help="allow INT8 kernels, calibrated on --calib images")
    parser.add_argument("--calib", type=Path, help="folder of images for INT8 calibration")
    parser.add_argument("--timing-cache", type=Path, help="TensorRT timing cache to read and update")


def run(args: argparse.Namespace) -> int:
    from rgbd_vae_ros.inference.tensorrt_backend import build_engine

    if args.int8 and args.calib is None:
        raise ValueError("--int8 needs --calib DIR, a folder of images to calibrate on")
    if Path(args.out).suffix not in (".engine", ".plan"):
        raise ValueError(f"--out {args.out!r} should end in .engine or .plan")
    calibration = calibration_batch(args.onnx, args.calib) if args.int8 else None
    path, built = build_engine(args.onnx, args.out, fp16=args.fp16, int8=args.int8, calibration=calibration,
                               timing_cache=args.timing_cache)
    print(json.dumps({"engine": str(path), "built": built, "reused": not built}))
    return 0


def calibration_batch(onnx_path: str, folder: Path, limit: int = 256):
    """Calibration samples as the model sees them: images resized and normalised like the stages do."""
    import numpy as np

    from rgbd_vae_ros.inference.onnxruntime_backend import OnnxRuntimeBackend
    from rgbd_vae_ros.processing import resize_rgb, rgb_to_unit_range

    from .data.image_folder import ImageFolder

    info = OnnxRuntimeBackend(onnx_path, device="cpu").info
    if info.part == "decoder":
        rng = np.random.default_rng(0)  # a decoder's inputs are latents: the prior
        return rng.standard_normal((limit, *info.input_shape)).astype(np.float32)
    if info.input_shape[0] != 3:
        raise ValueError(f"{onnx_path!r} takes {info.input_shape[0]} channels; INT8 calibration from images "
                         "supports RGB inputs")
    frames = ImageFolder(folder)
    height, width = info.image_size
    samples = [rgb_to_unit_range(resize_rgb(frames[i].rgb_u8, height, width)).transpose(2, 0, 1)
               for i in range(min(limit, len(frames)))]
    return np.stack(samples).astype(np.float32)
