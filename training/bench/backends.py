"""Backend latency (SPEC §10): each deployable part of each model, batch 1, on every backend this
machine has; median and p95 after warm-up, counted FLOPs and the GFLOP/s they imply."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from .timing import rows_table, time_call

DEFAULT_MODELS = ("conv_vae", "unet_depth")


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


def bench_backends(models: list[str] | None = None, runs: int = 50, device: str = "auto",
                   checkpoints: dict[str, str] | None = None) -> list[dict]:
    """Rows of model, part, backend, device, median/p95 ms, GFLOPs, GFLOP/s. Models without a
    checkpoint are timed at their default config with fresh weights (speed does not depend on them)."""
    import torch

    from rgbd_vae_ros.inference import open_backend
    from rgbd_vae_ros.models import build_model, model_from_checkpoint
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_ros.models.parts import example_inputs, model_part, part_names

    from ..export import export_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models or DEFAULT_MODELS:
            checkpoint = (checkpoints or {}).get(name)
            if checkpoint is None:
                checkpoint = str(Path(tmp) / f"{name}.pt")
                torch.manual_seed(0)
                torch.save(checkpoint_payload(build_model(name).eval()), checkpoint)
            model = model_from_checkpoint(checkpoint)
            folder = Path(tmp) / name
            export_checkpoint(checkpoint, folder)
            for part in part_names(model):
                inputs = example_inputs(model, part, batch=1, generator=torch.Generator().manual_seed(0))
                flops = count_flops(model_part(model, part), inputs)
                for backend_name in available_backends():
                    path = checkpoint if backend_name == "torch" else folder / f"{part}.onnx"
                    backend = open_backend(path, part, backend_name, device)
                    feeds = {n: t.numpy() for n, t in zip(backend.info.inputs, inputs)}
                    timing = time_call(f"{name}/{part}/{backend_name}", lambda: backend.run(feeds), runs, warmup=5)
                    rows.append({"model": name, "part": part, "backend": backend_name, "device": backend.device,
                                 "precision": backend.precision, "batch": 1, "median_ms": timing.median_ms,
                                 "p95_ms": timing.p95_ms, "gflops": flops / 1e9,
                                 "gflop_per_s": flops / 1e9 / (timing.median_ms / 1e3)})
                    backend.close()
    return rows


COLUMNS = [("model", "model", ""), ("part", "part", ""), ("backend", "backend", ""), ("device", "device", ""),
           ("median ms", "median_ms", ".2f"), ("p95 ms", "p95_ms", ".2f"), ("GFLOPs", "gflops", ".3f"),
           ("GFLOP/s", "gflop_per_s", ".1f")]


def format_rows(rows: list[dict]) -> str:
    lines = [rows_table(rows, COLUMNS)]
    by_part = {}
    for r in rows:
        by_part.setdefault((r["model"], r["part"]), {})[r["backend"]] = r["median_ms"]
    for (model, part), times in by_part.items():
        if "torch" in times and "onnxruntime" in times:
            lines.append(f"{model}/{part}: ONNX Runtime {times['torch'] / times['onnxruntime']:.2f}x torch eager")
    return "\n".join(lines)
