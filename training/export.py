"""``rgbd-vae export --checkpoint FILE --out DIR``: one ONNX file per deployable part
(``encoder.onnx`` + ``decoder.onnx`` for a VAE, ``depth.onnx`` for a depth model or an rgb2rgbd
VAE), with named inputs/outputs, a dynamic batch axis, ``onnx.checker``, the model metadata, and
ONNX Runtime checked against torch on fresh random inputs."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import warnings
from pathlib import Path

OPSET = 17


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by rgbd-vae train")
    parser.add_argument("--out", required=True, help="folder for <part>.onnx")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")


def run(args: argparse.Namespace) -> int:
    rows = export_checkpoint(args.checkpoint, args.out, opset=args.opset)
    width = max(len(r["file"]) for r in rows)
    print(f"{'file':<{width}}  {'inputs':<8} {'outputs':<12} {'max abs error vs torch':>22}")
    for r in rows:
        print(f"{r['file']:<{width}}  {','.join(r['inputs']):<8} {','.join(r['outputs']):<12} {r['max_abs_error']:>22.3g}")
    print(json.dumps({"exported": [r["file"] for r in rows]}))
    return 0


class ExportError(RuntimeError):
    """An export that would not deploy as trained; nothing of it is written."""


def export_checkpoint(checkpoint: str, out: str | Path, opset: int = OPSET) -> list[dict]:
    """Every part of ``checkpoint`` into ``out``, all or none: the parts are written and checked in
    a staging folder beside ``out`` and moved in only when every one passed."""
    import shutil

    from rgbd_vae_ros.files import staging_dir
    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint
    from rgbd_vae_ros.models.checkpoint import file_sha256
    from rgbd_vae_ros.models.parts import part_names

    payload = load_checkpoint(checkpoint)
    _check_depth_scale(payload, checkpoint)
    model = model_from_checkpoint(payload)
    digest = file_sha256(checkpoint)
    out = Path(out)
    staging = staging_dir(out.resolve())  # resolved: "--out ." has a name to stage beside
    try:
        rows = []
        for part in part_names(model):
            row = _export_part(model, payload, part, digest, staging, opset)
            rows.append({**row, "file": str(out / f"{part}.onnx")})
        _move_in(staging, out, [f"{row['part']}.onnx" for row in rows])
    except OSError as exc:
        raise ExportError(f"cannot write the ONNX files into {str(out)!r}: {exc.strerror or exc}; "
                          "nothing was exported and the folder is as it was") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return rows


def _check_depth_scale(payload: dict, checkpoint: str) -> None:
    """The nodes turn the depth output into metres with max_depth_m: 0 or NaN would publish NaN."""
    max_depth_m = payload.get("config", {}).get("train", {}).get("max_depth_m", 10.0)
    if not isinstance(max_depth_m, (int, float)) or not math.isfinite(max_depth_m) or max_depth_m <= 0:
        raise ExportError(f"checkpoint {str(checkpoint)!r} has train.max_depth_m {max_depth_m!r}; expected a "
                          "positive number of metres")


def _export_part(model, payload: dict, part: str, digest: str, folder: Path, opset: int) -> dict:
    import onnx
    import torch

    from rgbd_vae_ros.files import atomic_write_bytes
    from rgbd_vae_ros.inference.metadata import METADATA_KEY, info_from_checkpoint
    from rgbd_vae_ros.models.parts import example_inputs, model_part

    module = model_part(model, part)
    info = info_from_checkpoint(payload, part, digest)
    names = info.inputs + info.outputs
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter (dynamo=False) is chosen on purpose: no onnxscript at run time,
        # fast, and its graphs pass onnx.checker; silence its deprecation and tracer notes
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, example_inputs(model, part, batch=2), buffer, input_names=info.inputs,
                          output_names=info.outputs, dynamic_axes={n: {0: "batch"} for n in names},
                          opset_version=opset, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    proto.doc_string = f"rgbd_vae_ros {payload['model_name']} {part}"
    path = folder / f"{part}.onnx"
    atomic_write_bytes(path, proto.SerializeToString())
    error = parity(module, path, model, part)
    return {"part": part, "inputs": info.inputs, "outputs": info.outputs, "max_abs_error": error}


def _move_in(staging: Path, out: Path, names: list[str]) -> None:
    """The checked parts into ``out``: the whole staging folder when ``out`` is new, else part by
    part (other files in ``out``, such as another model's parts, stay)."""
    if not out.exists():
        staging.rename(out)
        return
    for name in names:
        os.replace(staging / name, out / name)


def parity(module, onnx_path: Path, model, part: str, batch: int = 3, seed: int = 1234) -> float:
    """Largest |ONNX Runtime - torch| over all outputs for fresh random inputs (another batch size
    than the export used, so the dynamic axis is exercised)."""
    import numpy as np
    import torch

    from rgbd_vae_ros.inference.onnxruntime_backend import OnnxRuntimeBackend
    from rgbd_vae_ros.models.parts import example_inputs

    inputs = example_inputs(model, part, batch=batch, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = [t.numpy() for t in module(*inputs)]
    backend = OnnxRuntimeBackend(onnx_path, device="cpu")
    got = backend.run({name: t.numpy() for name, t in zip(backend.info.inputs, inputs)})
    for name, e in zip(backend.info.outputs, expected):
        for source, values in (("torch", e), ("ONNX Runtime", got[name])):
            if not np.isfinite(values).all():
                raise ExportError(f"the {part}'s output {name!r} from {source} is not finite (NaN or inf) on random "
                                  "inputs; the checkpoint's weights are broken; nothing was exported")
    return float(max(np.abs(got[name] - e).max() for name, e in zip(backend.info.outputs, expected)))
