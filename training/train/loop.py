"""The training loop: deterministic batches, checkpoints each epoch, exact resume, NaN guard,
AMP on CUDA, DistributedDataParallel under ``torchrun``, progressive resizing."""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from rgbd_vae_ros.files import atomic_output, atomic_write_text, remove_leftovers
from rgbd_vae_ros.models import ModelError, build_model, config_from_dict, load_checkpoint
from rgbd_vae_ros.models.resnet_vae import ResNetEncoder, load_torchvision_resnet
from rgbd_vae_ros.models.checkpoint import checkpoint_payload, save_checkpoint

from ..faults import kill_point
from ..figures import labelled_grid
from ..data.detect import detect_layout, open_dataset
from .config import RunConfig, is_config_of, resize_at
from .geometry import training_geometry
from .tasks import make_task, makes_depth_part, open_samples
from .validation import VALIDATION_METRIC, lr_at, split_off_validation, validate

CHECKPOINT_NAME = "checkpoint.pt"  # the last epoch's: what --resume continues
BEST_NAME = "best.pt"  # the epoch with the best validation metric so far
CONFIG_NAME = "config.yaml"  # the run's whole configuration, defaults included


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a checkpoint that does not match)."""


@dataclass
class TrainResult:
    steps: int
    epochs: int
    losses: list[float] = field(default_factory=list)  # per step, this run only
    samples_per_s: float = 0.0
    checkpoint: Path | None = None
    best: Path | None = None  # None without validation frames
    validation: list[dict] = field(default_factory=list)  # per epoch of this run: step and each loss term
    train_frames: int = 0  # of the training split, trained on
    validation_frames: int = 0  # of the training split, held back to validate on (train.validation_share)


@dataclass
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # the process group's backend under torchrun

    @property
    def main(self) -> bool:
        return self.rank == 0


def _start_distributed(use_cuda: bool) -> _Distributed:
    """Joins the process group when started by ``torchrun`` (WORLD_SIZE set), else a single process."""
    if "WORLD_SIZE" not in os.environ:
        return _Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                        dist.get_backend())


def _pick_device(setting: str, local_rank: int) -> torch.device:
    if setting == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but torch sees no CUDA device")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _epoch_batches(size: int, batch_size: int, seed: int, epoch: int, dist: _Distributed) -> list[list[int]]:
    """This rank's batches of one epoch: a permutation fixed by (seed, epoch), full batches only."""
    order = np.random.default_rng([seed, epoch]).permutation(size)
    per_step = batch_size * dist.world_size
    steps = size // per_step
    return [order[s * per_step + dist.rank * batch_size:][:batch_size].tolist() for s in range(steps)]


def resize_batch(prepared: dict, size: tuple[int, int]) -> dict:
    """A prepared batch at ``size`` (height, width): the input bilinear with antialiasing, the
    target and validity nearest (a depth value is never blended across an edge or with a hole,
    and each kept value keeps its validity)."""
    resized = dict(prepared)
    for key, value in prepared.items():
        if not isinstance(value, torch.Tensor) or value.dim() != 4 or tuple(value.shape[-2:]) == tuple(size):
            continue
        if key == "input":
            resized[key] = torch.nn.functional.interpolate(value, size=size, mode="bilinear", antialias=True,
                                                           align_corners=False)
        else:
            resized[key] = torch.nn.functional.interpolate(value.float(), size=size, mode="nearest").to(value.dtype)
    return resized


def check_resize_sizes(model, task, schedule, device: torch.device, channels: int, model_name: str) -> None:
    """One forward pass at each size of ``schedule`` (eval mode, nothing learnt): a model whose input
    size is fixed (a VAE's fully connected layers) is an error before any training."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for epoch, (height, width) in schedule:
                probe = {"input": torch.zeros(1, channels, height, width, device=device),
                         "label": torch.zeros(1, dtype=torch.long, device=device)}
                try:
                    out = task.forward(model, probe)
                except (RuntimeError, ValueError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise TrainingError(f"train.resize_schedule: {model_name} cannot take a {height}x{width} input "
                                        f"(epoch {epoch}: {reason}); progressive resizing needs a model whose "
                                        "input size can change, such as mff_depth or unet_depth") from None
                wrong = [tuple(t.shape[-2:]) for t in out.values() if t.dim() == 4 and tuple(t.shape[-2:]) != (height, width)]
                if wrong:
                    raise TrainingError(f"train.resize_schedule: {model_name} answers a {height}x{width} input "
                                        f"(epoch {epoch}) with {wrong[0][0]}x{wrong[0][1]}; choose sizes it keeps")
    finally:
        model.train(was_training)


def _plain_schedule(schedule) -> list:
    return [[epoch, [height, width]] for epoch, (height, width) in schedule]


def autocast_for(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def optimizer_step(loss: torch.Tensor, optimizer, scaler=None, grad_clip: float = 0.0) -> None:
    """Backward and one update, through the AMP gradient scaler when there is one."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


def train(config: RunConfig, data: str | os.PathLike, out: str | os.PathLike, resume: bool = False,
          progress: bool | None = None) -> TrainResult:
    """Train ``config`` on ``data``; checkpoints and TensorBoard logs go to ``out``."""
    settings = config.train
    out = Path(out)
    if getattr(config.loss, "place_weight", 0.0) > 0 and not settings.place_data:
        raise TrainingError(f"{config.model_name}'s loss has a place term (loss.place_weight "
                            f"{config.loss.place_weight:g}) but no walk to draw its views from; give "
                            "train.place_data=WALK (rgbd-vae synth --walk revisit --rooms N --frames-per-visit 1 "
                            "--out WALK) or loss.place_weight=0")
    use_cuda = settings.device != "cpu" and torch.cuda.is_available()
    dist = _start_distributed(use_cuda)
    device = _pick_device(settings.device, dist.local_rank)
    torch.manual_seed(settings.seed)

    task = make_task(config)
    training, held, held_record = split_off_validation(open_dataset(data, split="train"), settings)
    dataset = open_samples(task, data, "train", settings.augment, settings.seed, settings.cache_frames, training)
    steps_per_epoch = len(dataset) // (settings.batch_size * dist.world_size)
    if steps_per_epoch == 0:
        raise TrainingError(f"{str(data)!r} has {len(dataset)} training samples, fewer than one batch of "
                            f"{settings.batch_size * dist.world_size}; lower train.batch_size")

    if settings.cache_frames and settings.num_workers > 0:
        dataset.preload(settings.num_workers)  # once, before the epochs' workers start (each takes a copy)
    geometry = None
    if makes_depth_part(task):  # what the export's metadata says the model saw (SPEC §5)
        geometry = training_geometry(dataset.reader, *task.image_size(), settings.max_depth_m,
                                     settings.augment, f"{detect_layout(data)} data {str(data)!r}")
    held_out = None
    if held is not None and dist.main:
        held_out = open_samples(task, data, "train", False, settings.seed, settings.cache_frames, held)
    views = None
    if settings.place_data:  # the VAE's place term (loss.place_weight)
        from .place_pairs import PlacePairs

        views = PlacePairs(task, settings.place_data, settings.place_rooms, settings.seed, dist.rank,
                           settings.cache_frames)
    model, optimizer = _build(config, device, resume)
    schedule = settings.resize_schedule
    if schedule:
        check_resize_sizes(model, task, schedule, device, getattr(config.model, "in_channels", 3), config.model_name)
    amp_context, scaler = autocast_for(device, settings.amp)

    step, best_metric = 0, None
    checkpoint_path, best_path = out / CHECKPOINT_NAME, out / BEST_NAME
    if dist.main:
        for path in (checkpoint_path, best_path, out / CONFIG_NAME):
            remove_leftovers(path)  # what a killed run was writing
    if resume:
        step, best_metric = _restore(checkpoint_path, config, model, optimizer, scaler, steps_per_epoch, held_record)
        _check_resume_schedule(checkpoint_path, schedule)
    schedule_steps = settings.epochs * steps_per_epoch
    total_steps = schedule_steps
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)

    trained = model
    if dist.backend is not None:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)

    writer = None
    if dist.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"), purge_step=step if resume else None)
        atomic_write_text(out / CONFIG_NAME, config.to_yaml())
    from tqdm import tqdm

    bar = tqdm(total=total_steps, initial=step, unit="step", disable=(not dist.main) if progress is None else not progress,
               desc=f"train {config.model_name}", dynamic_ncols=True)
    result = TrainResult(steps=step, epochs=step // steps_per_epoch, train_frames=len(dataset),
                         validation_frames=held_record["frames"])
    started, samples = time.perf_counter(), 0
    try:
        while step < total_steps:
            epoch, skip = divmod(step, steps_per_epoch)
            batches = _epoch_batches(len(dataset), settings.batch_size, settings.seed, epoch, dist)[skip:]
            if hasattr(dataset, "epoch"):
                dataset.epoch = epoch  # augmentation draws differ per epoch, fixed per (seed, epoch, index)
            size = resize_at(schedule, epoch)  # None: the data's own size, the model's input size
            loader = DataLoader(dataset, batch_sampler=batches, num_workers=settings.num_workers,
                                pin_memory=use_cuda)
            trained.train()
            for batch in loader:
                torch.manual_seed(settings.seed * 1_000_003 + step)  # sampling noise depends on the step only
                prepared = task.prepare(batch, device)
                if size is not None:
                    prepared = resize_batch(prepared, size)
                with amp_context:
                    if views is None:
                        out_tensors = task.forward(trained, prepared)
                        terms = task.loss(out_tensors, prepared, step)
                    else:
                        out_tensors, terms = views.forward_and_loss(task, trained, prepared, step, device)
                loss = terms["loss"]
                if not torch.isfinite(loss):
                    kept = f"; the last good checkpoint {str(checkpoint_path)!r} is kept" if checkpoint_path.exists() else ""
                    raise TrainingError(f"the loss became {loss.item()} at step {step}{kept}; "
                                        "lower train.lr or check the data")
                lr = lr_at(settings, step, schedule_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer_step(loss, optimizer, scaler, settings.grad_clip)
                step += 1
                samples += len(prepared["input"]) * dist.world_size
                result.losses.append(loss.item())
                bar.update(1)
                if writer is not None and (step % settings.log_every == 0 or step == 1):
                    _log_scalars(writer, task.name, terms, samples / (time.perf_counter() - started), step)
                    writer.add_scalar("train/lr", lr, step)
                    bar.set_postfix(loss=f"{loss.item():.4g}")
                if step >= total_steps:
                    break
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise TrainingError(f"the weights stopped being finite by step {step}; the last good checkpoint "
                                    "is kept; lower train.lr")
            if dist.main:
                validation = None
                if held_out is not None and ((epoch + 1) % settings.validate_every == 0 or step >= total_steps):
                    validation = validate(model, task, held_out, settings.batch_size, device, amp_context, step)
                    result.validation.append({"step": step, **validation})
                    for name, value in validation.items():
                        writer.add_scalar(f"val/{name}", value, step)
                    metric = validation[VALIDATION_METRIC[task.name]]
                    is_best = best_metric is None or metric < best_metric
                    best_metric = metric if is_best else best_metric
                saved = {"finished": step >= total_steps, "validation": validation, "best_metric": best_metric,
                         "held_out": held_record,
                         "resize": _resize_record(schedule, step // steps_per_epoch), "depth_geometry": geometry}
                _save(checkpoint_path, model, optimizer, scaler, config, step, steps_per_epoch, dist.backend, **saved)
                if validation is not None and is_best:
                    _save(best_path, model, optimizer, scaler, config, step, steps_per_epoch, dist.backend, **saved)
                kill_point("checkpoint")
                grid = labelled_grid(task.panels(out_tensors, prepared), task.panel_titles(prepared),
                                     task.panel_scale_m(prepared))
                writer.add_image(f"{task.name}/samples", grid, step, dataformats="HWC")
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if dist.backend is not None:
            _destroy_process_group()
    result.steps, result.epochs = step, math.ceil(step / steps_per_epoch)
    result.samples_per_s = samples / max(time.perf_counter() - started, 1e-9)
    result.checkpoint = checkpoint_path
    result.best = best_path if best_path.exists() and held_out is not None else None
    return result


def _destroy_process_group() -> None:
    import torch.distributed as dist

    dist.destroy_process_group()


def _resize_record(schedule, next_epoch: int) -> dict | None:
    """Where a checkpoint stands in the resize schedule: the schedule, and the epoch and size the
    run continues at."""
    if not schedule:
        return None
    size = resize_at(schedule, next_epoch)
    return {"schedule": _plain_schedule(schedule), "next_epoch": next_epoch, "next_size": list(size)}


def _check_resume_schedule(path: Path, schedule) -> None:
    recorded = (load_checkpoint(path).get("resize") or {}).get("schedule", [])
    if recorded != _plain_schedule(schedule):
        raise TrainingError(f"cannot resume: {str(path)!r} was trained with train.resize_schedule {recorded}, "
                            f"this run has {_plain_schedule(schedule)}; keep the schedule")


def training_layout(device: torch.device) -> torch.memory_format:
    """The memory layout a model trains in on ``device``: channels last on the CPU, where oneDNN's
    convolutions then run on NHWC forward and backward (each convolution's output follows its
    weight's layout, so the inputs need no conversion): a step of the default convolutional models
    takes 8-28 % less time on 2 cores, of the demo's tiny ones 30-40 % (``rgbd-vae bench training``
    times both side by side; docs/benchmarks.md, "Training throughput"). Contiguous on CUDA, where
    it has not been measured."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def to_training_layout(model: torch.nn.Module, device: torch.device,
                       layout: torch.memory_format | None = None) -> torch.nn.Module:
    """``model`` on ``device``, its 4-D weights in ``layout`` (default :func:`training_layout`)."""
    return model.to(device=device, memory_format=training_layout(device) if layout is None else layout)


def _build(config: RunConfig, device: torch.device, resume: bool = False):
    model = to_training_layout(build_model(config.model_name, config.model), device)
    if config.train.encoder_weights:
        if not isinstance(getattr(model, "encoder", None), ResNetEncoder):
            raise TrainingError(f"train.encoder_weights applies to models with a ResNet encoder (resnet_vae, "
                                f"mff_depth), not {config.model_name}")
        load_torchvision_resnet(model, config.train.encoder_weights)
    if config.train.init_weights and not resume:  # a resumed run has its own weights
        model.load_state_dict(_checkpoint_of(config.train.init_weights, config, "train.init_weights")["model"])
    # foreach: one fused update over all tensors, on the CPU too (where torch's default is a loop
    # over them in Python: 4 of the place-trained VAE's 50 ms a step)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.train.lr, weight_decay=config.train.weight_decay, foreach=True)
    return model, optimizer


def _checkpoint_of(path, config: RunConfig, what: str) -> dict:
    """The checkpoint at ``path``, which must hold this run's model with this run's model section;
    errors start with ``what`` ("cannot resume", "train.init_weights")."""
    try:
        payload = load_checkpoint(path)
    except ModelError as exc:
        raise TrainingError(f"{what}: {exc}") from None
    if payload["model_name"] != config.model_name or not _same_model_config(payload, config):
        raise TrainingError(f"{what}: {str(path)!r} holds a {payload['model_name']!r} model with another "
                            f"configuration than this run's {config.model_name!r}")
    return payload


def _same_model_config(payload: dict, config: RunConfig) -> bool:
    """Whether a checkpoint's model section is this run's, reading settings added since it was
    written as their defaults (as :func:`~.config.is_config_of` does)."""
    try:
        stored = config_from_dict(payload["model_name"], payload["model_config"])
    except ModelError:
        return False
    return dataclasses.asdict(stored) == dataclasses.asdict(config.model)


def _log_scalars(writer, prefix: str, terms: dict, samples_per_s: float, step: int) -> None:
    for name, value in terms.items():
        writer.add_scalar(f"{prefix}/{name}", float(value.detach()), step)
    writer.add_scalar("train/samples_per_s", samples_per_s, step)


_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file size limit was reached",
                errno.EDQUOT: "the disk quota is used up"}


def _save(path: Path, model, optimizer, scaler, config: RunConfig, step: int, steps_per_epoch: int,
          distributed: str | None, finished: bool, validation: dict | None = None,
          best_metric: float | None = None, held_out: dict | None = None, resize: dict | None = None,
          depth_geometry: dict | None = None) -> None:
    payload = checkpoint_payload(model, config=config.to_dict(), optimizer=optimizer.state_dict(),
                                 scaler=None if scaler is None else scaler.state_dict(),
                                 step=step, steps_per_epoch=steps_per_epoch, distributed=distributed,
                                 finished=finished, validation=validation, best_metric=best_metric,
                                 held_out=held_out, resize=resize, depth_geometry=depth_geometry)
    existed = path.exists()
    try:
        with atomic_output(path) as f:
            save_checkpoint(payload, f)
            kill_point("checkpoint-unrenamed")  # tests: die with the new file written but not yet in place
    except OSError as exc:
        reason = _DISK_ERRORS.get(exc.errno, exc.strerror or str(exc))
        kept = "the previous checkpoint is kept" if existed else "no checkpoint was written"
        raise TrainingError(f"cannot write the checkpoint {str(path)!r} at step {step}: {reason} "
                            f"({exc.strerror}); {kept}") from None


def is_finished(path: str | os.PathLike, config: RunConfig | None = None) -> bool:
    """Whether ``path`` is the checkpoint of a run that trained to its end (of ``config`` when
    given), as opposed to one stopped or killed part way."""
    try:
        payload = load_checkpoint(path)
    except ModelError:
        return False
    return payload.get("finished") is True and (config is None or is_config_of(payload.get("config"), config))


def _check_held_out(path, recorded: dict | None, held_out: dict) -> None:
    """Refuse to resume a run that held back other training frames to validate on than this one would."""
    if recorded is None:
        if held_out["frames"]:
            raise TrainingError(f"cannot resume: {str(path)!r} was written before train held validation frames "
                                "back from the training split (its run trained on every training frame and "
                                "validated on the test split); resume it with train.validate=false, or start a "
                                "new run")
        return
    if recorded != held_out:
        other = " (other ones)" if recorded["frames"] == held_out["frames"] else ""
        raise TrainingError(f"cannot resume: the checkpoint's run held back {recorded['frames']} training frames "
                            f"to validate on, this run would hold back {held_out['frames']}{other}; keep the data, "
                            "train.validate and train.validation_share")


def _restore(path: Path, config: RunConfig, model, optimizer, scaler, steps_per_epoch: int,
             held_out: dict) -> tuple[int, float | None]:
    """Model, optimiser and scaler state from ``path``; returns the step and the best validation metric so far."""
    payload = _checkpoint_of(path, config, "cannot resume")
    _check_held_out(path, payload.get("held_out"), held_out)
    if payload.get("steps_per_epoch") != steps_per_epoch:
        raise TrainingError(f"cannot resume: the checkpoint had {payload.get('steps_per_epoch')} steps per epoch, "
                            f"this run has {steps_per_epoch}; keep the data and train.batch_size")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    for group in optimizer.param_groups:  # a resumed run may change this on purpose (lr is set every step)
        group["weight_decay"] = config.train.weight_decay
    if scaler is not None and payload.get("scaler"):
        scaler.load_state_dict(payload["scaler"])
    return int(payload["step"]), payload.get("best_metric")
