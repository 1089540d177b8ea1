"""Checkpoints: plain tensors and values only, loaded with ``torch.load(weights_only=True)``, so a
file can rebuild its model but can never run code (SPEC §5)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from .registry import ModelError, build_model

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_payload", "file_sha256", "load_checkpoint", "model_from_checkpoint",
           "save_checkpoint"]

CHECKPOINT_FORMAT = "rgbd_vae_ros.checkpoint.v1"
_REQUIRED = ("format", "model_name", "model_config", "model")


def checkpoint_payload(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """What a checkpoint holds: format tag, model name, config (plain dict) and weights, plus
    ``extra`` (optimizer state, step, the training config...)."""
    return {"format": CHECKPOINT_FORMAT, "model_name": model.model_name, "kind": model.kind,
            "model_config": dataclasses.asdict(model.config), "model": model.state_dict(), **extra}


class _RememberingWriter:
    """A file whose failed write is remembered: torch.save reports it only as a C++ "enforce
    fail at inline_container.cc", losing the reason (a full disk, a file size limit)."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(payload: dict[str, Any], f: BinaryIO) -> None:
    """``torch.save`` into ``f``; a failed write raises the OSError that caused it (ENOSPC, EFBIG)."""
    writer = _RememberingWriter(f)
    try:
        torch.save(payload, writer)
    except RuntimeError:
        if writer.error is not None:
            raise writer.error from None
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint; any file that is not one of ours is a :class:`ModelError` naming why."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"checkpoint {str(path)!r} is a folder; expected a .pt file")
    if not path.is_file():
        raise ModelError(f"checkpoint {str(path)!r} does not exist")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # torch.save's format; anything else is not ours
    if not is_zip:
        raise ModelError(f"{str(path)!r} is not a readable checkpoint: truncated or another kind of file "
                         "(torch.save writes a zip archive)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        detail = f" (it asks for {found.group(1)})" if found else ""
        raise ModelError(f"checkpoint {str(path)!r} holds objects other than tensors and plain values, "
                         f"which are never unpickled{detail}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{str(path)!r} is not a readable checkpoint: truncated or another kind of file "
                         f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{str(path)!r} is a torch file but not an rgbd_vae_ros checkpoint "
                         f"(expected format {CHECKPOINT_FORMAT!r})")
    missing = [key for key in _REQUIRED if key not in payload]
    if missing:
        raise ModelError(f"checkpoint {str(path)!r} lacks {missing[0]!r}")
    return payload


def model_from_checkpoint(payload: dict[str, Any] | str | os.PathLike) -> nn.Module:
    """The model a checkpoint describes, with its weights, in eval mode."""
    if not isinstance(payload, dict):
        payload = load_checkpoint(payload)
    _check_weight_shapes(payload)
    model = build_model(payload["model_name"], payload["model_config"])
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ModelError(f"the checkpoint's weights do not fit model {payload['model_name']!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def _check_weight_shapes(payload: dict[str, Any]) -> None:
    """The config's tensors against the file's, on the meta device (no memory): a config that asks
    for huge tensors is refused before anything is allocated."""
    name, weights = payload["model_name"], payload["model"]
    with torch.device("meta"):
        skeleton = build_model(name, payload["model_config"])
    if not isinstance(weights, dict):
        raise ModelError(f"the checkpoint's weights are a {type(weights).__name__}; expected a dict of tensors")
    for key, expected in skeleton.state_dict().items():
        found = weights.get(key)
        if not isinstance(found, torch.Tensor):
            raise ModelError(f"the checkpoint's weights do not fit model {name!r}: its config asks for {key!r} "
                             f"{tuple(expected.shape)}, which the file lacks")
        if found.shape != expected.shape:
            raise ModelError(f"the checkpoint's weights do not fit model {name!r}: its config asks for {key!r} "
                             f"{tuple(expected.shape)}, the file holds {tuple(found.shape)}")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
