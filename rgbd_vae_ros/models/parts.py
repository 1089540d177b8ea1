"""The deployable parts of a model, each a module with positional tensors in and a tuple out, as
ONNX export and the inference backends need: ``encoder`` (input -> mu, logvar), ``decoder``
(latent -> recon) and ``depth`` (rgb -> depth; a depth model, or an ``rgb2rgbd`` VAE)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import ModelError

# part -> (input names, output names)
PART_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "encoder": (("input",), ("mu", "logvar")),
    "decoder": (("latent",), ("recon",)),
    "depth": (("rgb",), ("depth",)),
}
# A depth model with a validity mask (mff_depth) has this second depth output: the probability that
# the depth at a pixel can be trusted (the sigmoid of the model's mask logits, inside the graph). An
# rgb2rgbd VAE's depth part has it too: its decoded validity, the probability that the training data
# had a reading there.
MASK_OUTPUT = "mask"


class EncoderPart(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(x)  # (B, latent) x 2


class DecoderPart(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model.decode(z),)  # (B, out, H, W)


class DepthPart(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.model.kind == "depth":
            out = self.model(rgb)
            if "mask" in out:
                return out["depth"], torch.sigmoid(out["mask"])  # (B, 1, H, W) each; mask in [0, 1]
            return (out["depth"],)  # (B, 1, H, W)
        mu, _ = self.model.encode(rgb)
        recon = self.model.decode(mu)  # rgb2rgbd: the decoded depth channel, and its validity as the mask
        return recon[:, 3:4], (recon[:, 4:5] + 1) / 2


def part_names(model: nn.Module) -> list[str]:
    """The parts a model deploys as: a VAE its encoder and decoder (and depth when it is rgb2rgbd)."""
    if model.kind == "depth":
        return ["depth"]
    if getattr(model.config, "num_classes", 0):
        raise ModelError(f"{model.model_name} is conditional on a class label; only unconditional models deploy")
    return ["encoder", "decoder"] + (["depth"] if model.config.mode == "rgb2rgbd" else [])


def model_part(model: nn.Module, part: str) -> nn.Module:
    """The ``part`` of ``model`` as a module in eval mode."""
    if part not in part_names(model):
        raise ModelError(f"a {model.model_name} model has no {part!r} part; it has {', '.join(part_names(model))}")
    wrapper = {"encoder": EncoderPart, "decoder": DecoderPart, "depth": DepthPart}[part]
    return wrapper(model).eval()


def example_inputs(model: nn.Module, part: str, batch: int = 1, generator: torch.Generator | None = None) -> tuple:
    """Random inputs of the right shape for ``part`` (values in the [-1, 1] / N(0, 1) ranges it expects)."""
    c = model.config
    if part == "decoder":
        return (torch.randn(batch, c.latent_dim, generator=generator),)
    if model.kind == "depth":
        shape = (batch, 3, c.input_height, c.input_width)
    else:
        shape = (batch, 3 if part == "depth" else c.in_channels, c.image_size, c.image_size)
    return (torch.rand(*shape, generator=generator) * 2 - 1,)
