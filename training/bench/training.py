"""Training throughput per model (samples/s): one optimiser step on a random batch shaped like the
data loader's, timed after warm-up; AMP on CUDA as ``train`` uses it."""

from __future__ import annotations

import time

import numpy as np
import torch

from rgbd_vae_ros.models import build_model, model_names

from .timing import rows_table


def _random_batch(model, batch: int) -> dict[str, torch.Tensor]:
    c = model.config
    height, width = (c.input_height, c.input_width) if model.kind == "depth" else (c.image_size, c.image_size)
    sample = {"rgb": torch.rand(batch, 3, height, width) * 2 - 1, "depth": torch.rand(batch, 1, height, width) * 2 - 1,
              "valid": torch.ones(batch, 1, height, width, dtype=torch.bool)}
    if getattr(c, "num_classes", 0):
        sample["label"] = torch.arange(batch) % c.num_classes
    return sample


def bench_training(names: list[str] | None = None, batch: int = 8, steps: int = 5, device: str = "auto") -> list[dict]:
    """One row per model at its default configuration."""
    from ..losses import DepthLoss, ELBOLoss
    from ..train.loop import autocast_for, optimizer_step
    from ..train.tasks import DepthTask, VAETask

    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    rows = []
    for name in names or model_names():
        model = build_model(name).to(dev).train()
        task = (DepthTask(model.config, DepthLoss(), 10.0) if model.kind == "depth"
                else VAETask(model.config, ELBOLoss(), 10.0))
        prepared = task.prepare(_random_batch(model, batch), dev)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        amp_context, scaler = autocast_for(dev, enabled=True)
        times = []
        for i in range(steps + 1):  # the first step warms up
            start = time.perf_counter()
            with amp_context:
                loss = task.loss(task.forward(model, prepared), prepared, step=i)["loss"]
            optimizer_step(loss, optimizer, scaler)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        step_s = float(np.median(times[1:]))
        rows.append({"model": name, "device": str(dev), "amp": dev.type == "cuda", "batch": batch,
                     "input": list(prepared["input"].shape[1:]),
                     "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                     "step_ms": round(step_s * 1e3, 1), "samples_per_s": round(batch / step_s, 1)})
    return rows


COLUMNS = [("model", "model", ""), ("device", "device", ""), ("input", "input", ""),
           ("params M", "parameters_m", ".2f"), ("step ms", "step_ms", ".1f"), ("samples/s", "samples_per_s", ".1f")]


def format_rows(rows: list[dict]) -> str:
    return rows_table([{**r, "input": "x".join(str(v) for v in r["input"])} for r in rows], COLUMNS)
