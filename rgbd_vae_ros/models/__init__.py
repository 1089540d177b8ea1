"""The model zoo (SPEC §5): pure torch, selected by name, each with a dataclass config.

>>> model = build_model("conv_vae", {"latent_dim": 64})
>>> out = model(x)  # {"recon", "recon_logits", "mu", "logvar"}; depth models return {"depth"}
"""

from . import conv_vae, fc_vae, resnet_vae, unet_depth, vgg_vae  # noqa: F401  (registration)
from . import mff_depth  # noqa: F401  (registration)
from . import fast_depth  # noqa: F401  (registration)
from .base import MODES, VAE, VAEConfig
from .registry import ModelError, build_model, config_from_dict, model_names, register_model
from .checkpoint import load_checkpoint, model_from_checkpoint
from .resnet_vae import load_torchvision_resnet34

__all__ = ["MODES", "VAE", "ModelError", "VAEConfig", "build_model", "config_from_dict",
           "load_checkpoint", "load_torchvision_resnet34", "model_from_checkpoint", "model_names", "register_model"]
