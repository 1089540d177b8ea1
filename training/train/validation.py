"""What happens around the optimiser steps: the learning rate at each step, and the pass over the
held-out split after each epoch that picks ``best.pt``."""

from __future__ import annotations

import math
import os

import torch
from torch.utils.data import DataLoader

from ..data.errors import DataError
from .config import TrainSettings
from .tasks import TaskError, open_samples

# The loss term that ranks checkpoints: the VAE's reconstruction (its total moves with the beta
# warm-up, so epochs would not compare), the depth model's whole loss (fixed weights).
VALIDATION_METRIC = {"vae": "recon", "depth": "loss"}
# Layouts whose test split holds scenes the training split does not (an image folder has none).
_HELD_OUT_LAYOUTS = ("nyu-mat", "nyu-raw", "densedepth", "mnist")


def lr_at(settings: TrainSettings, step: int, schedule_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of a schedule ``schedule_steps`` long."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    if settings.lr_schedule == "constant":
        return settings.lr
    progress = min(1.0, (step - settings.warmup_steps) / max(1, schedule_steps - settings.warmup_steps))
    return settings.min_lr + (settings.lr - settings.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def open_validation(task, data: str | os.PathLike, settings: TrainSettings):
    """The held-out samples, or None where validation is off or the data set has no held-out split
    (an image folder; NYU raw data of a single scene)."""
    from ..data.detect import detect_layout

    if not settings.validate or detect_layout(data) not in _HELD_OUT_LAYOUTS:
        return None
    try:
        return open_samples(task, data, "test", augment=False, seed=settings.seed, cache=settings.cache_frames)
    except (TaskError, DataError):  # an empty test split: train without validation
        return None


def validate(model, task, dataset, batch_size: int, device: torch.device, amp_context, step: int) -> dict[str, float]:
    """Each loss term averaged over every held-out sample, in eval mode (the VAE decodes mu)."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    try:
        with torch.no_grad():
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                prepared = task.prepare(batch, device)
                with amp_context:
                    terms = task.loss(task.forward(model, prepared), prepared, step)
                n = len(prepared["input"])
                for name, value in terms.items():
                    totals[name] = totals.get(name, 0.0) + float(value) * n
                count += n
    finally:
        model.train(was_training)
    return {name: total / count for name, total in totals.items()}
