"""What a batch means to each kind of model: its input, its target, its loss, its pictures."""

from __future__ import annotations

import numpy as np
import torch

from rgbd_vae_ros.processing import DECODED_READING_MIN, colorize_depth, depth_from_unit_range, rgb_from_unit_range

from ..figures import depth_scale_m


class TaskError(ValueError):
    """Data that the model cannot be trained or evaluated on."""


def _rgb_tiles(images: torch.Tensor) -> list[np.ndarray]:
    return [rgb_from_unit_range(t.permute(1, 2, 0).float().cpu().numpy()) for t in images]


def _depth_m(depth_unit: torch.Tensor, max_depth_m: float, valid: torch.Tensor | None = None) -> list[np.ndarray]:
    """(B, 1, H, W) normalised depth to metres per sample, NaN where ``valid`` is False."""
    depths = []
    for i, t in enumerate(depth_unit):
        depth_m = depth_from_unit_range(t[0].float().cpu().numpy(), max_depth_m)
        if valid is not None:
            depth_m[~valid[i, 0].cpu().numpy()] = np.nan
        depths.append(depth_m)
    return depths


def _depth_columns(true_m: list[np.ndarray], estimated_m: list[np.ndarray], max_depth_m: float) -> list[list[np.ndarray]]:
    """Two columns of coloured depth on one scale, set by the true depth."""
    scale = depth_scale_m(true_m, max_depth_m)
    return [[colorize_depth(d, scale) for d in true_m], [colorize_depth(d, scale) for d in estimated_m]]


class VAETask:
    """Input and target by the model's mode (RGB first, then depth); the loss masks missing depth."""

    name = "vae"

    def __init__(self, model_config, loss, max_depth_m: float, depth_holes: float = 0.0, lens_roundtrip: float = 0.0):
        self.config, self.loss_fn, self.max_depth_m = model_config, loss, max_depth_m
        self.lens_roundtrip = lens_roundtrip
        self.needs_depth = model_config.mode in ("rgbd", "rgb2rgbd")
        self.conditional = getattr(model_config, "num_classes", 0) > 0
        # made-up holes in the input depth teach the decoded validity to follow the input's; an rgb2rgbd
        # model has no depth input to see them in
        self.depth_holes = depth_holes if model_config.mode == "rgbd" else 0.0

    def image_size(self) -> tuple[int, int]:
        return self.config.image_size, self.config.image_size

    def check_sample(self, sample: dict, source: str) -> None:
        if self.needs_depth and "depth" not in sample:
            raise TaskError(f"model mode {self.config.mode!r} needs depth, but {source!r} holds RGB only; "
                            "use model.mode=rgb")
        if self.conditional and "label" not in sample:
            raise TaskError(f"a conditional model needs class labels, but {source!r} has none")

    def prepare(self, batch: dict, device: torch.device) -> dict:
        rgb = batch["rgb"].to(device, non_blocking=True)  # (B, 3, H, W)
        prepared = {"label": batch["label"].to(device) if self.conditional else None}
        if self.needs_depth:
            depth = batch["depth"].to(device, non_blocking=True)  # (B, 1, H, W)
            valid = batch["valid"].to(device, non_blocking=True)
            rgbd = torch.cat([rgb, depth], dim=1)
            prepared["input"] = rgbd if self.config.mode == "rgbd" else rgb
            prepared["target"] = rgbd
            prepared["valid"] = torch.cat([torch.ones_like(rgb, dtype=torch.bool), valid], dim=1)
        else:
            prepared.update(input=rgb, target=rgb, valid=None)
        return prepared

    def forward(self, model, prepared: dict, decode: int | None = None) -> dict:
        """The model's outputs; ``decode``: only the first ``decode`` inputs are decoded (``recon``),
        every one is encoded (``mu``, ``logvar``), in the one call DistributedDataParallel wants."""
        from rgbd_vae_ros.models.base import VAE

        inner = getattr(model, "module", model)
        own_forward = type(inner).forward is not VAE.forward
        bits = getattr(self.loss_fn, "quantiser_bits", 0)
        if bits:  # the model's own forward adds the noise while training (under DDP: the wrapped model's)
            if own_forward:
                raise TaskError(f"loss.quantiser_bits needs a VAE that samples its code in VAE.forward; "
                                f"{type(inner).__name__} has its own forward")
            inner.train_quantiser_bits = bits
        if self.conditional:
            out = model(prepared["input"], prepared["label"])
        elif decode is not None and not own_forward:
            return model(prepared["input"], decode=decode)
        else:
            out = model(prepared["input"])
        # the decoded outputs of the first ``decode`` inputs only, as VAE.forward gives them
        return out if decode is None else {**out, "recon": out["recon"][:decode],
                                           "recon_logits": out["recon_logits"][:decode]}

    def loss(self, out: dict, prepared: dict, step: int) -> dict:
        return self.loss_fn(out, prepared["target"], prepared["valid"], step)

    def panel_titles(self, prepared: dict) -> list[str]:
        titles = ["input RGB", "decoded RGB"]
        return titles + ["true depth", "decoded depth"] if prepared["target"].shape[1] == 4 else titles

    def panel_scale_m(self, prepared: dict, count: int = 4) -> float | None:
        """The depth colour scale of :meth:`panels` (set by the true depth); None without depth."""
        if prepared["target"].shape[1] != 4:
            return None
        true_m = _depth_m(prepared["target"][:count, 3:], self.max_depth_m, prepared["valid"][:count, 3:])
        return depth_scale_m(true_m, self.max_depth_m)

    def panels(self, out: dict, prepared: dict, count: int = 4) -> list[list[np.ndarray]]:
        """Columns: input RGB, reconstructed RGB, and with depth the true and reconstructed depth."""
        target, recon = prepared["target"][:count], out["recon"][:count].detach()
        columns = [_rgb_tiles(target[:, :3]), _rgb_tiles(recon[:, :3])]
        if target.shape[1] == 4:
            true_m = _depth_m(target[:, 3:], self.max_depth_m, prepared["valid"][:count, 3:])
            decoded_m = _depth_m(recon[:, 3:4], self.max_depth_m, recon[:, 4:5] >= DECODED_READING_MIN)  # black: none
            columns += _depth_columns(true_m, decoded_m, self.max_depth_m)
        return [list(row) for row in zip(*columns)]


class DepthTask:
    """RGB in, depth out (and a validity mask where the model has one); the loss counts valid
    pixels only, and supervises the mask with that validity."""

    name = "depth"

    def __init__(self, model_config, loss, max_depth_m: float, lens_roundtrip: float = 0.0):
        self.config, self.loss_fn, self.max_depth_m = model_config, loss, max_depth_m
        self.lens_roundtrip = lens_roundtrip

    def image_size(self) -> tuple[int, int]:
        return self.config.input_height, self.config.input_width

    def check_sample(self, sample: dict, source: str) -> None:
        if "depth" not in sample:
            raise TaskError(f"a depth model needs ground-truth depth, but {source!r} holds RGB only")

    def prepare(self, batch: dict, device: torch.device) -> dict:
        return {"input": batch["rgb"].to(device, non_blocking=True),
                "target": batch["depth"].to(device, non_blocking=True),
                "valid": batch["valid"].to(device, non_blocking=True)}

    def forward(self, model, prepared: dict) -> dict:
        return model(prepared["input"])

    def loss(self, out: dict, prepared: dict, step: int) -> dict:
        if "mask" in out:  # a validity mask (mff_depth): supervised by where the true depth is valid
            return self.loss_fn(out["depth"], prepared["target"], prepared["valid"], out["mask"])
        return self.loss_fn(out["depth"], prepared["target"], prepared["valid"])

    def panel_titles(self, prepared: dict) -> list[str]:
        titles = ["input RGB", "true depth", "estimated depth"]
        return titles + ["trusted (mask)"] if hasattr(self.config, "mask_mode") else titles

    def panel_scale_m(self, prepared: dict, count: int = 4) -> float:
        """The depth colour scale of :meth:`panels` (set by the true depth)."""
        true_m = _depth_m(prepared["target"][:count], self.max_depth_m, prepared["valid"][:count])
        return depth_scale_m(true_m, self.max_depth_m)

    def panels(self, out: dict, prepared: dict, count: int = 4) -> list[list[np.ndarray]]:
        """Columns: input RGB, true depth, estimated depth, and the mask where the model has one."""
        true_m = _depth_m(prepared["target"][:count], self.max_depth_m, prepared["valid"][:count])
        columns = [_rgb_tiles(prepared["input"][:count]),
                   *_depth_columns(true_m, _depth_m(out["depth"][:count].detach(), self.max_depth_m), self.max_depth_m)]
        if "mask" in out:  # white where the model trusts its depth
            trusted = torch.sigmoid(out["mask"][:count, 0].detach().float()).cpu().numpy()
            columns.append([np.repeat(np.rint(t * 255).astype(np.uint8)[..., None], 3, axis=2) for t in trusted])
        return [list(row) for row in zip(*columns)]


def make_task(config):
    """The task object of a :class:`RunConfig`."""
    settings = config.train
    if config.task == "vae":
        return VAETask(config.model, config.loss, settings.max_depth_m, settings.depth_holes, settings.lens_roundtrip)
    return DepthTask(config.model, config.loss, settings.max_depth_m, settings.lens_roundtrip)


def makes_depth_part(task) -> bool:
    """Whether the trained model has a depth part (a depth model, or an rgb2rgbd VAE), whose training
    geometry its checkpoint records (:mod:`.geometry`)."""
    return task.name == "depth" or getattr(task.config, "mode", None) == "rgb2rgbd"


def open_samples(task, path, split: str, augment: bool, seed: int = 0, cache: bool = False, reader=None):
    """The samples of ``split`` of ``path`` at the model's input size, checked to suit the task;
    ``reader``: frames of that split already opened (the training frames not held back to validate on)."""
    from ..data.detect import detect_layout, open_dataset
    from ..data.torch_dataset import Augment, RGBDDataset

    if reader is None:
        reader = open_dataset(path, split=split)
    if len(reader) == 0:
        raise TaskError(f"{str(path)!r} has no {split} samples")
    height, width = task.image_size()
    layout = detect_layout(path)
    if makes_depth_part(task):  # never stretched: cropped to the model's aspect, as the stage crops a camera's
        from .geometry import AspectFrames

        reader = AspectFrames(reader, height, width, layout)
    augmentation = Augment(depth_holes=getattr(task, "depth_holes", 0.0), lens_roundtrip=task.lens_roundtrip) \
        if augment else None
    square = layout == "image-folder"
    if augmentation is not None and augmentation.lens_roundtrip > 0:
        _check_lens_frames(reader[0].rgb_u8.shape[:2], square, path)
    dataset = RGBDDataset(reader, height, width, task.max_depth_m, augmentation,
                          square_crop=square, seed=seed, cache_frames=cache)
    task.check_sample(dataset[0], str(path))
    return dataset


def _check_lens_frames(shape: tuple[int, int], square: bool, path) -> None:
    """train.lens_roundtrip needs the frames as augmentation gets them to be the NYU lens's 4:3 view."""
    from ..data.torch_dataset import fits_nyu_lens

    height, width = (min(shape),) * 2 if square else shape
    if not fits_nyu_lens(height, width):
        raise TaskError(f"train.lens_roundtrip sends RGB through the NYU Kinect's lens, whose model covers a 4:3 "
                        f"frame, but {str(path)!r} gives frames of {width}x{height} to augment; set it to 0 for "
                        "this data")
