"""Training configuration: a YAML file (``training/configs/``) plus ``KEY=VALUE`` overrides.

Layout of a config file::

    task: vae            # or depth
    model: {name: conv_vae, latent_dim: 400, ...}   # the model's dataclass fields
    train: {batch_size: 16, epochs: 10, lr: 2.0e-4, ...}   # TrainSettings
    loss: {beta: 1.0, warmup_steps: 1000}            # ELBOLoss or DepthLoss fields (MFFDepthLoss for mff_depth)

An override names a dotted key, ``train.lr=1e-4`` or ``model.latent_dim=64``; its value is
read as YAML, so numbers, booleans and lists keep their type.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rgbd_vae_ros.models import ModelError, config_from_dict
from rgbd_vae_ros.models.registry import check_field_types

from ..losses import DepthLoss, ELBOLoss, MFFDepthLoss

TASKS = {"vae": ELBOLoss, "depth": DepthLoss}
MODEL_LOSSES = {"mff_depth": MFFDepthLoss}  # models whose loss is their own, not their task's


def loss_class(model_name: str, task: str) -> type:
    """The loss a model trains with: its own (:data:`MODEL_LOSSES`) or its task's."""
    return MODEL_LOSSES.get(model_name, TASKS[task])


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A training configuration that cannot run."""


@dataclass
class TrainSettings:
    batch_size: int = 16
    epochs: int = 10
    max_steps: int = 0  # > 0: stop after this many optimiser steps in all (checkpoint written)
    lr: float = 2e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # > 0: clip the gradient norm
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    log_every: int = 20
    max_depth_m: float = 10.0
    augment: bool = True
    # an 'rgbd' VAE: the share of training frames (with augment) whose depth loses its readings in made-up
    # holes, so the decoded depth's validity learns to follow the input's on data with few holes of its own
    depth_holes: float = 0.5
    # the share of training frames (with augment) whose RGB goes through the NYU Kinect's RGB lens and
    # back (distorted, then undistorted: softer, black corners), as the NYU raw reader's RGB is; for
    # training on RGB rendered or stored without a lens (the labeled layout) for use on raw frames
    lens_roundtrip: float = 0.0
    # keep frames in memory once read (small data sets); with num_workers > 0 all are read before the
    # first epoch, on that many processes, and every epoch's workers share them
    cache_frames: bool = False
    encoder_weights: str = ""  # resnet_vae: torchvision resnet34 weights, a local file
    # a checkpoint (.pt) of the same model and configuration whose weights this run starts from (not its
    # optimiser or step): fine-tuning on other data, or going on with a run on a fresh machine
    init_weights: str = ""
    # a linear warm-up over warmup_steps, then cosine: from lr down to min_lr at the end of
    # train.epochs (max_steps stops a run early without changing its schedule), or constant: lr
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    # a pass over the validation frames after each epoch; best.pt keeps the best. Those frames are
    # validation_share of the training split's rooms (frames, where a data set has no rooms), held back
    # from training; the test split never chooses a model (it is for rgbd-vae eval)
    validate: bool = True
    validation_share: float = 0.1
    validate_every: int = 1  # epochs between those passes (and after the last step)
    # progressive resizing: [[epoch, [height, width]], ...], each size from its epoch on; the first
    # entry at epoch 0, epochs rising, the last size the model's input size (see resize_schedule)
    resize_schedule: tuple = ()
    # a VAE's place term (loss.place_weight > 0): a revisit walk (synth --walk revisit) whose rooms
    # give two views each, place_rooms rooms per step (train/place_pairs.py)
    place_data: str = ""
    place_rooms: int = 16

    def __post_init__(self) -> None:
        self.resize_schedule = parse_resize_schedule(self.resize_schedule)
        for name in ("batch_size", "epochs", "log_every", "validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "num_workers", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.lr <= 0 or self.max_depth_m <= 0:
            raise ValueError(f"lr and max_depth_m must be positive, got {self.lr} and {self.max_depth_m}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r} is not one of auto, cpu, cuda")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule {self.lr_schedule!r} is not one of cosine, constant")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be 0 or more, got {self.warmup_steps}")
        if self.place_rooms < 2:  # each view's negatives are the other rooms' views
            raise ValueError(f"place_rooms must be at least 2, got {self.place_rooms}")
        for name in ("depth_holes", "lens_roundtrip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a share of the frames, from 0 to 1, got {getattr(self, name)}")
        if not 0 < self.validation_share < 1:
            raise ValueError(f"validation_share is the share of the training rooms held back to validate on, above "
                             f"0 and below 1, got {self.validation_share} (train.validate=false turns validation off)")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must be between 0 and lr ({self.lr}), got {self.min_lr}")


def parse_resize_schedule(entries) -> tuple[tuple[int, tuple[int, int]], ...]:
    """``train.resize_schedule`` as ((epoch, (height, width)), ...); a ValueError names what is wrong."""
    where = "train.resize_schedule"
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"{where} must be a list of [epoch, [height, width]] entries, got {entries!r}")
    parsed = []
    for entry in entries:
        ok = isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], (list, tuple)) \
            and len(entry[1]) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in (entry[0], *entry[1]))
        if not ok:
            raise ValueError(f"{where} entry {entry!r} is not [epoch, [height, width]] in whole numbers")
        epoch, (height, width) = entry
        if epoch < 0 or height < 1 or width < 1:
            raise ValueError(f"{where} entry {list(entry)!r} needs an epoch of 0 or more and a positive size")
        parsed.append((epoch, (height, width)))
    if parsed and parsed[0][0] != 0:
        raise ValueError(f"{where} must start at epoch 0, its first entry is at epoch {parsed[0][0]}")
    for (e0, _), (e1, _) in zip(parsed, parsed[1:]):
        if e1 <= e0:
            raise ValueError(f"{where} epochs must rise, but epoch {e1} follows epoch {e0}")
    return tuple(parsed)


def check_resize_schedule(schedule, input_size: tuple[int, int], model_name: str) -> None:
    """Sizes that suit the model: none larger than its input size, the last one equal to it (the
    model ends trained at the size it is used at), each of its aspect ratio within 5 %."""
    if not schedule:
        return
    height, width = input_size
    for epoch, (h, w) in schedule:
        if h > height or w > width:
            raise ConfigError(f"train.resize_schedule size {h}x{w} (epoch {epoch}) is larger than the "
                              f"{model_name} input size {height}x{width}")
        if abs((h / w) / (height / width) - 1) > 0.05:
            raise ConfigError(f"train.resize_schedule size {h}x{w} (epoch {epoch}) is not of the {model_name} "
                              f"input's aspect ratio ({height}x{width}); images are never stretched")
    if schedule[-1][1] != (height, width):
        last = schedule[-1][1]
        raise ConfigError(f"train.resize_schedule ends at {last[0]}x{last[1]}, not at the {model_name} input "
                          f"size {height}x{width}; add a last entry with that size")


def resize_at(schedule, epoch: int) -> tuple[int, int] | None:
    """The input size of ``epoch`` under ``schedule`` (None without one: the model's own size)."""
    size = None
    for start, entry_size in schedule:
        if start <= epoch:
            size = entry_size
    return size


@dataclass
class RunConfig:
    task: str
    model_name: str
    model: Any  # the model's config dataclass
    train: TrainSettings = field(default_factory=TrainSettings)
    loss: Any = None  # ELBOLoss or DepthLoss

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (stored in checkpoints, loadable with weights_only)."""
        return {"task": self.task, "model": {"name": self.model_name, **dataclasses.asdict(self.model)},
                "train": dataclasses.asdict(self.train), "loss": dataclasses.asdict(self.loss)}

    def to_yaml(self) -> str:
        """The whole configuration, defaults included, as a config file that :func:`load_config` reads."""

        def plain(value):
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

        return yaml.safe_dump(plain(self.to_dict()), sort_keys=False)


def resolve_config_path(name: str | os.PathLike) -> Path:
    """A path as given, or the name of a bundled config (``tiny_vae`` or ``tiny_vae.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate
    bundled = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config {str(name)!r} is neither a file nor a bundled config ({bundled})")


def apply_override(values: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} is not KEY=VALUE")
    section, dot, name = key.partition(".")
    if not dot or section not in ("model", "train", "loss"):
        raise ConfigError(f"override key {key!r} must start with model., train. or loss.")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    values.setdefault(section, {})[name] = value


SECTIONS = ("task", "model", "train", "loss")


def _check_sections(values: dict[str, Any]) -> None:
    """A misspelt section (``trian:``) would otherwise train with defaults without a word."""
    for key, value in values.items():
        if key not in SECTIONS:
            import difflib

            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config section {key!r} is unknown{hint}; the sections are {', '.join(SECTIONS)}")
        if key != "task" and value is not None and not isinstance(value, dict):
            raise ConfigError(f"config section {key!r} is {value!r}; expected a mapping of settings")


def config_from_values(values: dict[str, Any]) -> RunConfig:
    _check_sections(values)
    task = values.get("task")
    if task not in TASKS:
        raise ConfigError(f"config task {task!r} is not one of {', '.join(TASKS)}")
    model_values = dict(values.get("model") or {})
    name = model_values.pop("name", None)
    if not name:
        raise ConfigError("config has no model.name")
    try:
        model = config_from_dict(name, model_values)
    except ModelError as exc:
        raise ConfigError(str(exc)) from None
    is_depth_model = hasattr(model, "input_height")
    if is_depth_model != (task == "depth"):
        raise ConfigError(f"model {name!r} cannot be trained as task {task!r}")
    loss_cls = loss_class(name, task)
    sections = {"train": (TrainSettings, values.get("train")), "loss": (loss_cls, values.get("loss"))}
    built = {}
    for section, (cls, section_values) in sections.items():
        try:
            built[section] = cls(**check_field_types(cls, dict(section_values or {}), section))
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    input_size = (model.input_height, model.input_width) if is_depth_model else (model.image_size, model.image_size)
    check_resize_schedule(built["train"].resize_schedule, input_size, name)
    if built["train"].place_data and not getattr(built["loss"], "place_weight", 0.0) > 0:
        raise ConfigError(f"train.place_data {built['train'].place_data!r} is a walk for the VAE's place term, but "
                          "loss.place_weight is 0; give it a weight or leave the walk out")
    return RunConfig(task, name, model, built["train"], built["loss"])


def is_config_of(stored: Any, config: RunConfig) -> bool:
    """Whether ``stored``, a checkpoint's training config, is ``config``. Settings added since it was
    written read as their defaults, which keep what runs did before them (a ``unet_depth`` checkpoint
    without ``head`` is a tanh head), so an older checkpoint of the same run is still that run."""
    if not isinstance(stored, dict):
        return False
    try:
        return config_from_values(stored).to_dict() == config.to_dict()
    except ConfigError:
        return False


def load_config(path: str | os.PathLike, overrides: list[str] = (), task: str | None = None) -> RunConfig:
    """The run configuration of a YAML file with overrides applied; ``task`` must match when given."""
    path = resolve_config_path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {str(path)!r} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config {str(path)!r} is not a mapping of sections")
    for override in overrides:
        apply_override(values, override)
    config = config_from_values(values)
    if task is not None and config.task != task:
        raise ConfigError(f"config {str(path)!r} is for task {config.task!r}, not {task!r}")
    return config
