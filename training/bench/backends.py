"""Backend latency (SPEC §10): each deployable part of each model, batch 1, on every backend this
machine has, plus ONNX Runtime INT8 (``rgbd-vae export --int8``); median and p95 after warm-up,
counted FLOPs and the GFLOP/s they imply, and what INT8 changes in accuracy on held-out synthetic
rooms: a depth part's AbsRel, a VAE part's decoded RGB PSNR and depth RMSE (with the other part in
fp32, and with both in INT8)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from .timing import rows_table

DEFAULT_MODELS = ("conv_vae", "unet_depth")
# INT8 calibration rooms and held-out rooms: other seeds than the demo's training rooms (11), 4:3
CALIBRATION_ROOMS = {"scenes": 8, "frames": 4, "seed": 101, "width": 160, "height": 120}
HELD_OUT_ROOMS = {"scenes": 24, "frames": 1, "seed": 202, "width": 160, "height": 120}


def count_flops(module, inputs) -> int:
    """FLOPs of one forward pass as torch's FlopCounterMode counts them (2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())


def available_backends() -> list[str]:
    names = ["torch"]
    if importlib.util.find_spec("onnxruntime"):
        names.append("onnxruntime")
    if importlib.util.find_spec("tensorrt"):
        import torch

        if torch.cuda.is_available():
            names.append("tensorrt")
    return names


def _model_checkpoints(models: list[str], checkpoints: dict[str, str], tmp: Path) -> list[tuple[str, str, str]]:
    """(model name, weights label, checkpoint) per entry of ``models``: a model name (its default
    config with fresh weights, or ``checkpoints[name]``) or a checkpoint file."""
    import torch

    from rgbd_vae_ros.models import build_model, load_checkpoint
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    entries = []
    for entry in models:
        if entry.endswith((".pt", ".pth")):
            entries.append((load_checkpoint(entry)["model_name"], entry, entry))
        elif entry in checkpoints:
            entries.append((entry, checkpoints[entry], checkpoints[entry]))
        else:
            path = str(tmp / f"{entry}.pt")
            torch.manual_seed(0)
            torch.save(checkpoint_payload(build_model(entry).eval()), path)
            entries.append((entry, "fresh", path))
    return entries


def bench_backends(models: list[str] | None = None, runs: int = 50, device: str = "auto",
                   checkpoints: dict[str, str] | None = None) -> list[dict]:
    """Rows of model, weights, part, backend, precision, device, median/p95 ms, GFLOPs, GFLOP/s and,
    for the ONNX Runtime rows, accuracy on held-out rooms. ``models`` holds model names (timed at
    their default config with fresh weights, which speed does not depend on, unless ``checkpoints``
    names one) or checkpoint files."""
    import torch

    from rgbd_vae_ros.inference import open_backend
    from rgbd_vae_ros.models import model_from_checkpoint
    from rgbd_vae_ros.models.parts import example_inputs, model_part, part_names

    from ..data import open_dataset
    from ..export import export_checkpoint
    from ..int8 import int8_name
    from ..synth.generate import write_nyu_raw

    rows = []
    backends = available_backends()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        int8 = "onnxruntime" in backends
        if int8:
            write_nyu_raw(tmp / "calibration", **CALIBRATION_ROOMS)
            write_nyu_raw(tmp / "held_out", **HELD_OUT_ROOMS)
            held_out = list(open_dataset(tmp / "held_out"))
        for index, (name, weights, checkpoint) in enumerate(_model_checkpoints(models or list(DEFAULT_MODELS),
                                                                                checkpoints or {}, tmp)):
            model = model_from_checkpoint(checkpoint)
            folder = tmp / f"onnx_{index}"
            export_checkpoint(checkpoint, folder, calib=str(tmp / "calibration") if int8 else None)
            parts = part_names(model)
            quality = _Quality(folder, parts, held_out) if int8 else None
            for part in parts:
                inputs = example_inputs(model, part, batch=1, generator=torch.Generator().manual_seed(0))
                flops = count_flops(model_part(model, part), inputs)
                cases = [(b, "fp32") for b in backends] + ([("onnxruntime", "int8")] if int8 else [])
                opened = []
                for backend_name, precision in cases:
                    if backend_name == "torch":
                        path = checkpoint
                    else:
                        path = folder / (int8_name(part) if precision == "int8" else f"{part}.onnx")
                    opened.append(open_backend(path, part, backend_name, device))
                calls = [_call(b, {n: t.numpy() for n, t in zip(b.info.inputs, inputs)}) for b in opened]
                for (backend_name, precision), backend, (median_ms, p95_ms) in zip(cases, opened,
                                                                                   time_in_turns(calls, runs)):
                    row = {"model": name, "weights": weights, "part": part, "backend": backend_name,
                           "device": backend.device, "precision": precision, "batch": 1, "median_ms": median_ms,
                           "p95_ms": p95_ms, "gflops": flops / 1e9, "gflop_per_s": flops / 1e9 / (median_ms / 1e3)}
                    if quality is not None and backend_name == "onnxruntime":
                        row.update(quality.of(part, precision))
                    rows.append(row)
                    backend.close()
    return rows


def _call(backend, feeds: dict):
    return lambda: backend.run(feeds)


def time_in_turns(calls: list, runs: int, warmup: int = 5, rounds: int = 5) -> list[tuple[float, float]]:
    """(median ms, p95 ms) of each of ``calls`` over ``runs`` timed calls after ``warmup``, taken in
    turns (``rounds`` rounds, each case a share of its runs per round): a change of load during the
    benchmark then falls on every case alike, and their ratios hold on a shared machine."""
    import time

    import numpy as np

    if runs < 1:
        raise ValueError(f"runs is {runs}; expected at least 1")
    for call in calls:
        for _ in range(warmup):
            call()
    shares = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    samples_ns: list[list[int]] = [[] for _ in calls]
    for share in shares:
        for call, samples in zip(calls, samples_ns):
            for _ in range(share):
                start = time.perf_counter_ns()
                call()
                samples.append(time.perf_counter_ns() - start)
    return [(float(np.median(s)) / 1e6, float(np.percentile(s, 95)) / 1e6) for s in samples_ns]


class _Quality:
    """Accuracy on held-out frames through the stages, a part at a given precision and the other
    parts in fp32: a depth part's AbsRel (NYU protocol), a VAE's decoded RGB PSNR and depth RMSE."""

    def __init__(self, folder: Path, parts: list[str], frames: list):
        self.folder, self.parts, self.frames, self._vae = folder, parts, frames, {}

    def _file(self, part: str, precision: str) -> Path:
        from ..int8 import int8_name

        return self.folder / (int8_name(part) if precision == "int8" else f"{part}.onnx")

    def of(self, part: str, precision: str) -> dict:
        if part == "depth":
            return {"abs_rel": self._abs_rel(precision)}
        result = self._reconstruction(precision if part == "encoder" else "fp32",
                                      precision if part == "decoder" else "fp32")
        if part == "decoder" and precision == "int8":
            result["both_int8"] = self._reconstruction("int8", "int8")
        return result

    def _abs_rel(self, precision: str) -> float:
        from rgbd_vae_ros.stages import DepthStage

        from ..metrics import average, depth_metrics

        stage = DepthStage.open(self._file("depth", precision), "onnxruntime", "cpu")
        try:
            return average([depth_metrics(stage(f.rgb_u8), f.depth_m) for f in self.frames])["abs_rel"]
        finally:
            stage.close()

    def _reconstruction(self, encoder_precision: str, decoder_precision: str) -> dict:
        import numpy as np

        from rgbd_vae_ros.stages import DecodeStage, EncodeStage

        from ..metrics import depth_error, psnr

        key = (encoder_precision, decoder_precision)
        if key not in self._vae:
            encoder = EncodeStage.open(self._file("encoder", encoder_precision), "onnxruntime", "cpu")
            decoder = DecodeStage.open(self._file("decoder", decoder_precision), "onnxruntime", "cpu")
            psnrs, rmses, published = [], [], []
            for f in self.frames:
                mu, _ = encoder(f.rgb_u8, f.depth_m if encoder.uses_depth else None)
                rgb_u8, depth_m = decoder(mu, output_size=f.rgb_u8.shape[:2])
                psnrs.append(psnr(rgb_u8, f.rgb_u8))
                error = depth_error(depth_m, f.depth_m) if depth_m is not None and f.depth_m is not None else None
                if error is not None:
                    rmses.append(error["rmse"])
                    published.append(error["published"])
            encoder.close()
            decoder.close()
            self._vae[key] = {"rgb_psnr_db": float(np.mean(psnrs)),
                              "depth_rmse_m": float(np.mean(rmses)) if rmses else None,
                              "depth_published": float(np.mean(published)) if published else None}
        return dict(self._vae[key])


COLUMNS = [("model", "model", ""), ("weights", "weights", ""), ("part", "part", ""), ("backend", "backend", ""),
           ("precision", "precision", ""), ("device", "device", ""), ("median ms", "median_ms", ".2f"),
           ("p95 ms", "p95_ms", ".2f"), ("GFLOPs", "gflops", ".3f"), ("GFLOP/s", "gflop_per_s", ".1f"),
           ("AbsRel", "abs_rel", ".4f"), ("RGB PSNR dB", "rgb_psnr_db", ".2f"), ("depth RMSE m", "depth_rmse_m", ".4f"),
           ("published", "depth_published", ".1%")]


def format_rows(rows: list[dict]) -> str:
    lines = [rows_table(rows, COLUMNS)]
    by_part: dict[tuple, dict] = {}
    for r in rows:
        by_part.setdefault((r["model"], r.get("weights", "fresh"), r["part"]), {})[
            (r["backend"], r.get("precision", "fp32"))] = r
    for (model, weights, part), cases in by_part.items():
        label = f"{model}/{part}" if weights == "fresh" else f"{model} ({weights})/{part}"
        fp32, int8, torch = cases.get(("onnxruntime", "fp32")), cases.get(("onnxruntime", "int8")), cases.get(
            ("torch", "fp32"))
        speed = []
        if torch and fp32:
            speed.append(f"ONNX Runtime {torch['median_ms'] / fp32['median_ms']:.2f}x torch eager")
        if fp32 and int8:
            speed.append(f"INT8 {fp32['median_ms'] / int8['median_ms']:.2f}x ONNX Runtime fp32")
        if speed:
            lines.append(f"{label}: {', '.join(speed)}")
        if fp32 and int8:
            lines.append(f"{label}: INT8 accuracy {_accuracy_change(fp32, int8)}")
            if "both_int8" in int8:
                lines.append(f"{label}: encoder and decoder both INT8 {_accuracy_change(fp32, int8['both_int8'])}")
    return "\n".join(lines)


def _accuracy_change(fp32: dict, int8: dict) -> str:
    """'AbsRel 0.1960 vs fp32 0.1959 (+0.0001)'-style text for the metrics both rows have."""
    parts = []
    for key, name, unit, spec in (("abs_rel", "AbsRel", "", ".4f"), ("rgb_psnr_db", "RGB PSNR", " dB", ".2f"),
                                  ("depth_rmse_m", "depth RMSE", " m", ".4f"),
                                  ("depth_published", "depth published", "", ".3f")):
        if fp32.get(key) is not None and int8.get(key) is not None:
            parts.append(f"{name} {int8[key]:{spec}}{unit} vs fp32 {fp32[key]:{spec}}{unit} "
                         f"({int8[key] - fp32[key]:+{spec}})")
    return ", ".join(parts) or "not measured"
