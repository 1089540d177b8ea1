"""Runs one part of a ``.pt`` checkpoint with torch (eager)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import BackendError
from .metadata import ModelInfo, info_from_checkpoint


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | os.PathLike, part: str | None = None, device: str = "auto", fp16: bool = False):
        import torch

        from rgbd_vae_ros.models import ModelError, load_checkpoint, model_from_checkpoint
        from rgbd_vae_ros.models.checkpoint import file_sha256
        from rgbd_vae_ros.models.parts import model_part, part_names

        try:
            payload = load_checkpoint(path)
            model = model_from_checkpoint(payload)  # its weights checked against the config before allocating
            parts = part_names(model)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        if part is None:
            if len(parts) > 1:
                raise BackendError(f"{str(path)!r} holds a {payload['model_name']} with parts {', '.join(parts)}; "
                                   "name the part to run")
            part = parts[0]
        if part not in parts:
            raise BackendError(f"{str(path)!r} holds a {payload['model_name']} whose parts are {', '.join(parts)}, "
                               f"not {part!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("device 'cuda' was asked for but torch sees no CUDA device")
        self.device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        self.precision = "fp16" if fp16 and self.device == "cuda" else "fp32"
        self._torch = torch
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.info: ModelInfo = info_from_checkpoint(payload, part, file_sha256(path))
        self.info.check(repr(str(path)))
        self.module = model_part(model, part).to(self.device, self._dtype)
        self.path = Path(path)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs[name])).to(self.device, self._dtype)
                   for name in self.info.inputs]
        with torch.inference_mode():
            outputs = self.module(*tensors)
        return {name: out.float().cpu().numpy() for name, out in zip(self.info.outputs, outputs)}

    def close(self) -> None:
        self.module = None
