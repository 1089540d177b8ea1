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
    """One row per model at its default configuration and memory layout. On the CPU each model is
    timed in the layout ``train`` uses (channels last) and, side by side, contiguous: the two take
    turns step by step, so both see the same load."""
    from ..train.config import loss_class
    from ..train.loop import autocast_for, optimizer_step, to_training_layout, training_layout
    from ..train.tasks import DepthTask, VAETask

    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    layouts = [training_layout(dev)] + ([torch.contiguous_format] if dev.type == "cpu" else [])
    rows = []
    for name in names or model_names():
        runs = []
        for layout in layouts:
            torch.manual_seed(0)
            model = to_training_layout(build_model(name), dev, layout).train()
            loss = loss_class(name, model.kind)()
            task = DepthTask(model.config, loss, 10.0) if model.kind == "depth" else VAETask(model.config, loss, 10.0)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            runs.append((layout, model, task, task.prepare(_random_batch(model, batch), dev), optimizer, []))
        amp_context, scaler = autocast_for(dev, enabled=True)
        for i in range(steps + 1):  # the first step warms up
            for layout, model, task, prepared, optimizer, times in runs:
                start = time.perf_counter()
                with amp_context:
                    loss = task.loss(task.forward(model, prepared), prepared, step=i)["loss"]
                optimizer_step(loss, optimizer, scaler)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        for layout, model, task, prepared, optimizer, times in runs:
            step_s = float(np.median(times[1:]))
            rows.append({"model": name, "device": str(dev), "amp": dev.type == "cuda", "batch": batch,
                         "layout": _LAYOUT_NAMES[layout], "trains_in": layout == layouts[0],
                         "input": list(prepared["input"].shape[1:]),
                         "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                         "step_ms": round(step_s * 1e3, 1), "samples_per_s": round(batch / step_s, 1)})
    return rows


_LAYOUT_NAMES = {torch.channels_last: "channels_last", torch.contiguous_format: "contiguous"}


def layout_speedups(rows: list[dict]) -> list[str]:
    """One line per model timed in two layouts: how much faster a step is in the one ``train`` uses."""
    lines = []
    for name in dict.fromkeys(r["model"] for r in rows):
        own = [r for r in rows if r["model"] == name]
        used = [r for r in own if r["trains_in"]]
        other = [r for r in own if not r["trains_in"]]
        if used and other:
            lines.append(f"{name}: a step in {used[0]['layout']} (as train runs it) takes "
                         f"{used[0]['step_ms'] / other[0]['step_ms']:.2f}x the time of one in {other[0]['layout']}")
    return lines


COLUMNS = [("model", "model", ""), ("device", "device", ""), ("layout", "layout", ""), ("input", "input", ""),
           ("params M", "parameters_m", ".2f"), ("step ms", "step_ms", ".1f"), ("samples/s", "samples_per_s", ".1f")]


def format_rows(rows: list[dict]) -> str:
    return rows_table([{**r, "input": "x".join(str(v) for v in r["input"])} for r in rows], COLUMNS)
