"""``rgbd-vae export --checkpoint FILE --out DIR``: one ONNX file per deployable part
(``encoder.onnx`` + ``decoder.onnx`` for a VAE, ``depth.onnx`` for a depth model or an rgb2rgbd
VAE), with named inputs/outputs, a dynamic batch axis, ``onnx.checker``, the model metadata, and
ONNX Runtime checked against torch on fresh random inputs."""

from __future__ import annotations

import argparse
import io
import json
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


def export_checkpoint(checkpoint: str, out: str | Path, opset: int = OPSET) -> list[dict]:
    import onnx
    import torch

    from rgbd_vae_ros.files import atomic_write_bytes
    from rgbd_vae_ros.inference.metadata import METADATA_KEY, info_from_checkpoint
    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint
    from rgbd_vae_ros.models.checkpoint import file_sha256
    from rgbd_vae_ros.models.parts import example_inputs, model_part, part_names

    payload = load_checkpoint(checkpoint)
    model = model_from_checkpoint(payload)
    digest = file_sha256(checkpoint)
    out = Path(out)
    rows = []
    for part in part_names(model):
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
        path = out / f"{part}.onnx"
        atomic_write_bytes(path, proto.SerializeToString())
        error = parity(module, path, model, part)
        rows.append({"file": str(path), "part": part, "inputs": info.inputs, "outputs": info.outputs,
                     "max_abs_error": error})
    return rows


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
    return float(max(np.abs(got[name] - e).max() for name, e in zip(backend.info.outputs, expected)))
