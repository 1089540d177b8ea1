"""What happens around the optimiser steps: the learning rate at each step, and the pass over the
validation frames (held back from the training split) after each epoch that picks ``best.pt``."""

from __future__ import annotations

import hashlib
import json
import math

import torch
from torch.utils.data import DataLoader

from .config import TrainSettings

# The loss term that ranks checkpoints: the VAE's reconstruction (its total moves with the beta
# warm-up, so epochs would not compare), the depth model's whole loss (fixed weights).
VALIDATION_METRIC = {"vae": "recon", "depth": "loss"}


def lr_at(settings: TrainSettings, step: int, schedule_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of a schedule ``schedule_steps`` long."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    if settings.lr_schedule == "constant":
        return settings.lr
    progress = min(1.0, (step - settings.warmup_steps) / max(1, schedule_steps - settings.warmup_steps))
    return settings.min_lr + (settings.lr - settings.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def split_off_validation(reader, settings: TrainSettings) -> tuple[object, object | None, dict]:
    """``(train, held, record)`` of the frames of a training split (``reader``): those to train on,
    those held back to validate on and choose ``best.pt`` by (``train.validation_share`` of its rooms,
    :func:`..data.splits.hold_out`; None where validation is off or the share rounds to no room), and
    a record of which were held back, which a resumed run must match. The test split is never among
    them: it is for ``rgbd-vae eval`` only."""
    from ..data.frame import FrameSubset, frame_scenes_of
    from ..data.splits import hold_out

    if not settings.validate:
        return reader, None, {"frames": 0}
    scenes, keys = frame_scenes_of(reader), getattr(reader, "frame_keys", None)
    kept, held = hold_out(scenes, len(reader), settings.validation_share, keys)
    if not held:
        return reader, None, {"frames": 0}
    names = [scenes[i] for i in held] if scenes else [keys[i] for i in held] if keys else held
    digest = hashlib.sha256(json.dumps([held, names]).encode()).hexdigest()[:16]
    return FrameSubset(reader, kept), FrameSubset(reader, held), {"frames": len(held), "digest": digest}


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
