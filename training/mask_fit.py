"""Fit the validity mask of a trained ``mff_depth`` (mask_mode "head") on frames its depth never
trained on, the depth left exactly as it was (issue 19).

Why: an error-aware mask (``loss.mask_target`` trusted or laplace) trained beside the depth learns
where the depth is wrong **on the training frames**, which the depth has partly memorised; on new
frames its errors are larger and elsewhere. Here the depth network runs frozen in eval mode (its
batch-norm statistics too), its refined features and depth are computed once for held-out frames,
and only the mask head is trained on them, against where that depth is actually wrong there. The
result is a checkpoint of the same model (optionally with a deeper head, ``mask_head_widths``),
which exports and runs in the nodes as any mff_depth.

    python -m rgbd_vae_training.mask_fit --checkpoint RUN/checkpoint.pt --data FRAMES --split test \\
        --out RUN/mask_fit.pt [--mask-target laplace] [--head-widths 16,16] [--steps 1500]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

from .losses import MASK_TARGETS, MFFDepthLoss


class MaskFitError(ValueError):
    """A mask fit that cannot run."""


def _frozen_outputs(model, dataset, batch_size: int) -> dict[str, torch.Tensor]:
    """The refined features, the depth and the truth of every frame, the network in eval mode."""
    from torch.utils.data import DataLoader

    features, depth, target, valid = [], [], [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            rgb = batch["rgb"]
            feats = model.network(rgb)  # (B, refine_width, H/2, W/2)
            size = rgb.shape[-2:]
            depth.append(torch.tanh(F.interpolate(model.depth_head(feats), size=size, mode="bilinear",
                                                  align_corners=False)))  # (B, 1, H, W), as forward
            features.append(feats)
            target.append(batch["depth"])
            valid.append(batch["valid"])
    return {"features": torch.cat(features), "depth": torch.cat(depth), "target": torch.cat(target),
            "valid": torch.cat(valid)}


def _with_head(payload: dict, head_widths: tuple[int, ...] | None):
    """The checkpoint's model, rebuilt with a new mask head of ``head_widths`` (None: its own head,
    from its weights); every other weight from the checkpoint."""
    from rgbd_vae_ros.models import build_model, model_from_checkpoint

    model = model_from_checkpoint(payload)
    if payload["model_name"] != "mff_depth" or model.config.mask_mode != "head":
        raise MaskFitError(f"mask_fit trains the mask head of an mff_depth model with mask_mode 'head'; "
                           f"the checkpoint holds {payload['model_name']!r}"
                           + (f" with mask_mode {model.config.mask_mode!r}" if payload["model_name"] == "mff_depth" else ""))
    if head_widths is None:
        return model
    config = dataclasses.replace(model.config, mask_head_widths=tuple(head_widths))
    fresh = build_model("mff_depth", config)
    kept = {k: v for k, v in payload["model"].items() if not k.startswith("mask_head.")}
    missing, unexpected = fresh.load_state_dict(kept, strict=False)
    assert not unexpected and all(k.startswith("mask_head.") for k in missing), (missing, unexpected)
    return fresh.eval()


def fit_mask(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, split: str = "test",
             mask_target: str = "trusted", mask_error: float = 0.25, head_widths: tuple[int, ...] | None = None,
             steps: int = 1500, batch_size: int = 8, lr: float = 1e-3, seed: int = 0, log=print) -> dict:
    """Train only the mask head of ``checkpoint`` on the ``split`` frames of ``data``; write the
    checkpoint with that head to ``out``. Returns what was done (also stored in the checkpoint)."""
    from rgbd_vae_ros.files import atomic_write_bytes
    from rgbd_vae_ros.models import load_checkpoint
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload, save_checkpoint

    from .train.tasks import DepthTask, open_samples

    if steps < 1 or batch_size < 1 or not lr > 0:
        raise MaskFitError(f"steps and batch size must be at least 1 and lr positive, got {steps}, {batch_size}, {lr}")
    loss = MFFDepthLoss(mask_target=mask_target, mask_error=mask_error)  # refuses an unknown target
    payload = load_checkpoint(checkpoint)
    torch.manual_seed(seed)
    model = _with_head(payload, head_widths)
    max_depth_m = float(payload.get("config", {}).get("train", {}).get("max_depth_m", 10.0))
    frames = open_samples(DepthTask(model.config, loss, max_depth_m), data, split, augment=False, cache=True)
    frozen = _frozen_outputs(model, frames, batch_size)
    count = len(frozen["depth"])
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    head = model.mask_head.train()
    for parameter in head.parameters():
        parameter.requires_grad_(True)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    first = last = None
    for step in range(steps):
        pick = torch.randint(count, (min(batch_size, count),), generator=generator)
        flip = bool(torch.randint(2, (), generator=generator))  # the same frames mirrored: a free second view
        parts = {k: (v[pick].flip(-1) if flip else v[pick]) for k, v in frozen.items()}
        logits = F.interpolate(head(parts["features"]), size=parts["depth"].shape[-2:], mode="bilinear",
                               align_corners=False)
        term = loss(parts["depth"], parts["target"], parts["valid"], logits)["mask"]
        optimiser.zero_grad()
        term.backward()
        optimiser.step()
        last = float(term.detach())
        first = last if first is None else first
        if (step + 1) % max(1, steps // 10) == 0:
            log(f"mask_fit step {step + 1}/{steps}: mask loss {last:.4f}")
    model.eval()
    record = {"from": str(checkpoint), "data": str(data), "split": split, "frames": count, "mask_target": mask_target,
              "mask_error": mask_error, "head_widths": list(model.config.mask_head_widths), "steps": steps,
              "batch_size": batch_size, "lr": lr, "seed": seed, "first_loss": first, "last_loss": last}
    extra = {k: v for k, v in payload.items()
             if k not in ("format", "model_name", "kind", "model_config", "model", "optimizer", "scaler")}
    config = dict(extra.get("config", {}))
    config["loss"] = {**config.get("loss", {}), "mask_target": mask_target, "mask_error": mask_error}
    config["model"] = {**config.get("model", {}), "mask_head_widths": list(model.config.mask_head_widths)}
    extra.update(config=config, mask_fit=record)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import io

    buffer = io.BytesIO()
    save_checkpoint(checkpoint_payload(model, **extra), buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rgbd_vae_training.mask_fit",
        description="train only the validity mask head of an mff_depth checkpoint on frames its depth never "
                    "trained on (the depth unchanged), against where that depth is wrong there")
    parser.add_argument("--checkpoint", required=True, help="a trained mff_depth .pt (mask_mode head)")
    parser.add_argument("--data", required=True, help="the frames to fit on (any layout; not the test frames)")
    parser.add_argument("--split", choices=("test", "train", "all"), default="test",
                        help="which of its frames (default test: a data set whose training split trained the depth)")
    parser.add_argument("--out", required=True, help="the checkpoint to write")
    parser.add_argument("--mask-target", choices=[t for t in MASK_TARGETS if t != "valid"], default="trusted")
    parser.add_argument("--mask-error", type=float, default=0.25, help="relative error of a trusted pixel (0.25)")
    parser.add_argument("--head-widths", default="",
                        help="comma-separated widths of a new, deeper mask head (default: train the existing head)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        widths = tuple(int(w) for w in args.head_widths.split(",")) if args.head_widths else None
    except ValueError:
        parser.error(f"--head-widths {args.head_widths!r} is not comma-separated whole numbers")
    from .cli import _one_sentence

    try:
        record = fit_mask(args.checkpoint, args.data, args.out, args.split, args.mask_target, args.mask_error,
                          widths, args.steps, args.batch_size, args.lr, args.seed)
    except Exception as exc:  # the boundary, as rgbd-vae's: one sentence and status 1
        print(f"mask_fit: error: {_one_sentence(exc)}", file=sys.stderr)
        return 1
    print(f"fitted the mask head on {record['frames']} frames ({record['mask_target']}, {record['steps']} steps, "
          f"loss {record['first_loss']:.4f} -> {record['last_loss']:.4f}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
