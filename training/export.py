"""``rgbd-vae export --checkpoint FILE --out DIR``: one ONNX file per deployable part
(``encoder.onnx`` + ``decoder.onnx`` for a VAE, ``depth.onnx`` for a depth model or an rgb2rgbd
VAE), with named inputs/outputs, a dynamic batch axis, ``onnx.checker``, the model metadata, and
ONNX Runtime checked against torch on fresh random inputs.

A VAE's encoder and decoder also carry the quantiser table of its latent codes (SPEC §4.3): the
per-dimension range of μ over the training split of ``--data`` (the data the checkpoint was
trained on; the checkpoint does not record where that was). Without ``--data``, the table is fit
on synthetic rooms rendered here (``rgbd-vae synth``'s generator), and the metadata says so
(``latent_quantiser.fit_on``)."""

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
    parser.add_argument("--data", default=None,
                        help="the data set the checkpoint was trained on: a VAE's latent quantiser table is fit on "
                             "its training split (default: on synthetic rooms, said in the metadata)")
    parser.add_argument("--int8", action="store_true",
                        help="also write <part>.int8.onnx: ONNX Runtime static INT8 quantisation (needs --calib)")
    parser.add_argument("--calib", default=None, metavar="PATH",
                        help="--int8: frames to calibrate on (any --data layout, or a folder of images)")
    from .int8 import check_arguments

    parser.set_defaults(check_arguments=check_arguments)


def run(args: argparse.Namespace) -> int:
    rows = export_checkpoint(args.checkpoint, args.out, opset=args.opset, data=getattr(args, "data", None),
                             calib=args.calib if getattr(args, "int8", False) else None)
    int8_rows = [r for r in rows if r.get("precision") == "int8"]
    rows = [r for r in rows if r.get("precision") != "int8"]
    width = max(len(r["file"]) for r in rows)
    print(f"{'file':<{width}}  {'inputs':<8} {'outputs':<12} {'max abs error vs torch':>22}")
    for r in rows:
        print(f"{r['file']:<{width}}  {','.join(r['inputs']):<8} {','.join(r['outputs']):<12} {r['max_abs_error']:>22.3g}")
    if int8_rows:
        from .int8 import describe

        print("\n".join(describe(int8_rows)))
    print(json.dumps({"exported": [r["file"] for r in rows + int8_rows]}))
    return 0


class ExportError(RuntimeError):
    """An export that would not deploy as trained; nothing of it is written."""


# Frames the quantiser table is fit on: at most this many of the training split (evenly spaced), or
# this many synthetic rooms without data.
QUANTISER_FRAMES, SYNTHETIC_ROOMS = 1000, 32


def export_checkpoint(checkpoint: str, out: str | Path, opset: int = OPSET, data: str | None = None,
                      calib: str | None = None) -> list[dict]:
    """Every part of ``checkpoint`` into ``out``, all or none: the parts are written and checked in
    a staging folder beside ``out`` and moved in only when every one passed. A VAE's parts carry
    the latent quantiser table fit on ``data``'s training split (or synthetic rooms). With ``calib``,
    each part also gets an INT8 twin calibrated on those frames (:mod:`.int8`)."""
    import shutil

    from rgbd_vae_ros.files import staging_dir
    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint
    from rgbd_vae_ros.models.checkpoint import file_sha256
    from rgbd_vae_ros.models.parts import part_names

    payload = load_checkpoint(checkpoint)
    _check_depth_scale(payload, checkpoint)
    model = model_from_checkpoint(payload)
    digest = file_sha256(checkpoint)
    quantiser = fit_latent_quantiser(checkpoint, data) if {"encoder", "decoder"} <= set(part_names(model)) else None
    if calib is not None:
        from .int8 import calibration_frames, quantise_parts

        calibration = calibration_frames(calib)  # bad calibration data fails before any part is written
    out = Path(out)
    staging = staging_dir(out.resolve())  # resolved: "--out ." has a name to stage beside
    try:
        rows = []
        for part in part_names(model):
            row = _export_part(model, payload, part, digest, staging, opset,
                               quantiser if part in ("encoder", "decoder") else None)
            rows.append({**row, "file": str(out / f"{part}.onnx")})
        if calib is not None:
            rows += [{**row, "file": str(out / row["file_name"])}
                     for row in quantise_parts(staging, [row["part"] for row in rows], calibration)]
        names = [Path(row["file"]).name for row in rows]
        _move_in(staging, out, names + _write_cards(staging, names))
        if calib is None:  # an INT8 twin of an earlier export would now run another checkpoint's weights
            for part in part_names(model):
                for stale in (f"{part}.int8.onnx", f"{part}.int8.card.yaml"):
                    (out / stale).unlink(missing_ok=True)
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


def fit_latent_quantiser(checkpoint: str, data: str | None = None) -> dict:
    """The quantiser table of the checkpoint's latent (metadata ``latent_quantiser``): the robust
    per-dimension range of μ (:meth:`rgbd_vae_ros.latent.Quantiser.fit`) over the training split of
    ``data``, or over synthetic rooms when no data is given; the encoder runs with the nodes'
    own pre-processing (:class:`rgbd_vae_ros.stages.EncodeStage` on torch)."""
    import numpy as np

    from rgbd_vae_ros.latent import LatentError, Quantiser
    from rgbd_vae_ros.stages import EncodeStage, StageError

    from .data import DataError

    stage = EncodeStage.open(checkpoint, "torch", "cpu")
    try:
        if data is not None:
            from .data import open_dataset

            try:
                frames = open_dataset(data, split="train")
                count = len(frames)
            except DataError as exc:
                raise ExportError(f"cannot fit the latent quantiser on {str(data)!r}: {exc}") from None
            if count == 0:
                raise ExportError(f"{str(data)!r} has no training frames to fit the latent quantiser on")
            picked = np.unique(np.linspace(0, count - 1, min(count, QUANTISER_FRAMES)).round().astype(int))
            fit_on = f"training split of {data} ({count} frames)"
            samples = ((frames[int(i)].rgb_u8, frames[int(i)].depth_m) for i in picked)
        else:
            from .synth.generate import generate_scene

            height = max(48, stage.height)
            width = height * 4 // 3
            fit_on = (f"{SYNTHETIC_ROOMS} synthetic rooms rendered at export ({width}x{height}); no training data "
                      "was given (rgbd-vae export --data)")
            samples = ((f.rgb_u8, f.depth_rgb_m) for i in range(SYNTHETIC_ROOMS)
                       for f in generate_scene(seed=7919, scene_index=i, frames=1, width=width, height=height,
                                               synchronised=True))
        try:
            mus = [stage(rgb, depth if stage.uses_depth else None)[0] for rgb, depth in samples]
        except (StageError, DataError) as exc:
            raise ExportError(f"cannot fit the latent quantiser: {exc}") from None
        try:
            table = Quantiser.fit(np.stack(mus))
        except LatentError as exc:
            raise ExportError(f"cannot fit the latent quantiser: {exc}") from None
    finally:
        stage.close()
    return {**table.to_dict(), "fit_on": fit_on, "frames": len(mus)}


def _export_part(model, payload: dict, part: str, digest: str, folder: Path, opset: int,
                 quantiser: dict | None = None) -> dict:
    import onnx
    import torch

    from rgbd_vae_ros.files import atomic_write_bytes
    from rgbd_vae_ros.inference.metadata import METADATA_KEY, info_from_checkpoint
    from rgbd_vae_ros.models.parts import example_inputs, model_part

    module = model_part(model, part)
    info = info_from_checkpoint(payload, part, digest)
    info.latent_quantiser = quantiser
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


def _write_cards(folder: Path, names: list[str]) -> list[str]:
    """A model card (SPEC §5.1) beside each depth part, from its metadata, so every depth model the
    nodes run has one (``depth.card.yaml``); returns the card files written."""
    from rgbd_vae_ros.cards import card_for_info, card_path, write_card
    from rgbd_vae_ros.inference.onnxruntime_backend import OnnxRuntimeBackend

    written = []
    for name in names:
        # cards describe depth models; encoders and decoders have their metadata
        if name not in ("depth.onnx", "depth.int8.onnx"):
            continue
        backend = OnnxRuntimeBackend(folder / name, device="cpu")
        card = card_path(folder / name)
        write_card(card, card_for_info(backend.info))
        backend.close()
        written.append(card.name)
    return written


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
