"""Small model settings shared by the model, backend and stage tests."""

from pathlib import Path

import pytest

# Small settings: quick to build, run and export; the shape tests use the defaults.
SMALL = {
    "conv_vae": {"image_size": 32, "latent_dim": 16, "widths": (16, 32, 32)},
    "rgb2rgbd": {"image_size": 32, "latent_dim": 16, "widths": (16, 32, 32)},
    "vgg_vae": {"image_size": 32, "latent_dim": 16, "widths": (16, 32, 32)},
    "resnet_vae": {"image_size": 32, "latent_dim": 16, "decoder_widths": (64, 32, 32, 16, 16, 16)},
    "fc_vae": {"image_size": 16, "latent_dim": 8, "hidden": (128, 64)},
    "cvae": {"image_size": 16, "latent_dim": 8, "hidden": (128, 64)},
    "unet_depth": {"input_height": 36, "input_width": 48, "widths": (8, 16, 32), "attention_heads": 2},
    "fast_depth": {"input_height": 32, "input_width": 64, "width_multiplier": 0.35, "final_width": 8},
    "mff_depth": {"input_height": 48, "input_width": 64, "encoder_blocks": (1, 1, 1, 1),
                  "encoder_widths": (8, 16, 16, 16), "decoder_widths": (16, 16, 8, 8, 8), "mff_width": 4,
                  "refine_width": 8},
}


@pytest.fixture(scope="session")
def small_configs():
    return {name: dict(values) for name, values in SMALL.items()}


@pytest.fixture(scope="session")
def small_checkpoints(tmp_path_factory, small_configs):
    """A checkpoint per model (fresh weights, BatchNorm statistics moved off their defaults)."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload

    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, config in small_configs.items():
        torch.manual_seed(0)
        model = build_model(name, config)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        paths[name] = folder / f"{name}.pt"
        torch.save(checkpoint_payload(model.eval(), config={"train": {"max_depth_m": 8.0}}), paths[name])
    return paths


@pytest.fixture(scope="session")
def exported(build_once, small_checkpoints):
    """``rgbd-vae export`` of every deployable small model: name -> (folder, rows)."""
    from rgbd_vae_training.export import export_checkpoint

    def build(root):
        return {name: (str(root / name), export_checkpoint(checkpoint, root / name))
                for name, checkpoint in small_checkpoints.items() if name != "cvae"}

    return {name: (Path(folder), rows) for name, (folder, rows) in build_once("exported", build).items()}
