"""The training loop on small NYU-layout data: checkpoints, exact resume, NaN guard, seeds, torchrun."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint
from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.train.config import load_config
from rgbd_vae_training.train.loop import TrainingError, train

# conv_vae small enough for a step in milliseconds; of nyu_raw_rooms' 4 training rooms one is held back
# to validate on: 6 training frames -> 3 steps of 2 per epoch
FAST = ["model.image_size=32", "model.widths=[8, 16, 16]", "model.latent_dim=8", "train.batch_size=2",
        "train.epochs=2", "train.log_every=1", "train.validate=true", "train.validation_share=0.25"]


def _config(*extra):
    return load_config("tiny_vae", [*FAST, *extra])


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_each_epoch_writes_one_checkpoint_that_rebuilds_the_model(nyu_raw_rooms, tmp_path):
    result = train(_config(), nyu_raw_rooms, tmp_path, progress=False)
    assert result.steps == 6 and result.epochs == 2 and len(result.losses) == 6
    payload = load_checkpoint(result.checkpoint)
    assert payload["step"] == 6 and payload["model_name"] == "conv_vae"
    assert payload["config"]["train"]["batch_size"] == 2 and "optimizer" in payload
    model = model_from_checkpoint(result.checkpoint)
    assert model.config.image_size == 32
    # no temp files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "checkpoint.pt", "config.yaml", "tensorboard"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    assert {"vae/loss", "vae/recon", "vae/kl", "vae/beta", "train/samples_per_s"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("vae/loss")] == [1, 2, 3, 4, 5, 6]  # log_every=1
    grids = events.Images("vae/samples")
    assert [g.step for g in grids] == [3, 6] and grids[0].width > grids[0].height  # one grid per epoch


@pytest.mark.slow
def test_resume_gives_the_same_parameters_as_training_straight_through(nyu_raw_rooms, tmp_path):
    straight = train(_config("train.max_steps=4"), nyu_raw_rooms, tmp_path / "a", progress=False)
    first = train(_config("train.max_steps=2"), nyu_raw_rooms, tmp_path / "b", progress=False)
    assert first.steps == 2  # stopped inside the first epoch (3 steps)
    resumed = train(_config("train.max_steps=4"), nyu_raw_rooms, tmp_path / "b", resume=True, progress=False)
    assert resumed.steps == 4 and len(resumed.losses) == 2
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-5)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for (ka, sa), (kb, sb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        torch.testing.assert_close(sb["exp_avg_sq"], sa["exp_avg_sq"], rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(nyu_raw_rooms, tmp_path):
    runs = [train(_config("train.epochs=1", f"train.seed={s}"), nyu_raw_rooms, tmp_path / str(i), progress=False)
            for i, s in enumerate((3, 3, 4))]
    weights = [load_checkpoint(r.checkpoint)["model"]["head.fc_mu.weight"] for r in runs]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


@pytest.mark.slow
def test_a_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(nyu_raw_rooms, tmp_path):
    good = train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path, progress=False)
    before = _digest(good.checkpoint)
    with pytest.raises(TrainingError, match="the last good checkpoint .* is kept"):
        train(_config("train.epochs=3", "train.lr=1e38"), nyu_raw_rooms, tmp_path, resume=True, progress=False)
    assert _digest(good.checkpoint) == before
    assert load_checkpoint(good.checkpoint)["step"] == 3


def test_resume_refuses_a_checkpoint_of_another_configuration(nyu_raw_rooms, tmp_path):
    train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path, progress=False)
    with pytest.raises(TrainingError, match="another configuration"):
        train(_config("model.latent_dim=9"), nyu_raw_rooms, tmp_path, resume=True, progress=False)
    with pytest.raises(TrainingError, match="steps per epoch"):
        train(_config("train.batch_size=1"), nyu_raw_rooms, tmp_path, resume=True, progress=False)
    with pytest.raises(TrainingError, match="cannot resume: checkpoint .* does not exist"):
        train(_config(), nyu_raw_rooms, tmp_path / "empty", resume=True, progress=False)


@pytest.mark.slow
def test_init_weights_starts_from_a_checkpoints_weights_and_refuses_another_model(nyu_raw_rooms, tmp_path):
    source = train(_config("train.epochs=2"), nyu_raw_rooms, tmp_path / "source", progress=False)
    trained = dict(model_from_checkpoint(source.checkpoint).named_parameters())
    # a learning rate too small to move a weight visibly: what the run ends with is what it started from
    still = ["train.epochs=1", "train.lr=1e-12", "train.warmup_steps=0", "train.seed=1"]
    started = train(_config(*still, f"train.init_weights={source.checkpoint}"), nyu_raw_rooms, tmp_path / "a",
                    progress=False)
    scratch = train(_config(*still), nyu_raw_rooms, tmp_path / "b", progress=False)
    for name, value in model_from_checkpoint(started.checkpoint).named_parameters():
        torch.testing.assert_close(value, trained[name], rtol=0, atol=1e-8, msg=name)
    far = dict(model_from_checkpoint(scratch.checkpoint).named_parameters())
    assert not torch.allclose(far["head.fc_mu.weight"], trained["head.fc_mu.weight"])
    assert load_checkpoint(started.checkpoint)["step"] == 3  # its own steps: the source's optimiser is not taken
    with pytest.raises(TrainingError, match="train.init_weights: .* another configuration"):
        train(_config("model.latent_dim=9", f"train.init_weights={source.checkpoint}"), nyu_raw_rooms,
              tmp_path / "c", progress=False)
    with pytest.raises(TrainingError, match="train.init_weights: checkpoint .* does not exist"):
        train(_config(f"train.init_weights={tmp_path / 'none.pt'}"), nyu_raw_rooms, tmp_path / "d", progress=False)


@pytest.mark.slow
def test_cached_frames_with_loader_workers_train_exactly_as_reading_each_epoch(nyu_raw_rooms, tmp_path, monkeypatch):
    from rgbd_vae_training.data.torch_dataset import RGBDDataset

    preloads, preload = [], RGBDDataset.preload

    def recorded(dataset, workers):
        preloads.append((workers, len(dataset)))
        preload(dataset, workers)

    monkeypatch.setattr(RGBDDataset, "preload", recorded)
    runs = []
    for cache in ("true", "false"):
        runs.append(train(_config("train.num_workers=2", f"train.cache_frames={cache}"), nyu_raw_rooms,
                          tmp_path / cache, progress=False))
        assert preloads == [(2, 6)]  # the 6 training frames, once, before the first epoch; none uncached
    assert len(runs[0].losses) == 6
    assert runs[0].losses == pytest.approx(runs[1].losses, rel=1e-6)


def test_data_that_cannot_train_the_model_is_a_clear_error(nyu_raw_rooms, tmp_path):
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train(_config("train.batch_size=64"), nyu_raw_rooms, tmp_path, progress=False)
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image
    for i in range(4):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(images / f"{i}.png")
    from rgbd_vae_training.train.tasks import TaskError
    with pytest.raises(TaskError, match="needs depth, but .* holds RGB only; use model.mode=rgb"):
        train(_config(), images, tmp_path / "out", progress=False)
    result = train(_config("model.mode=rgb"), images, tmp_path / "rgb", progress=False)  # and RGB-only works
    # an image folder has no rooms: a quarter of its 4 images is held back one by one to validate on
    assert (result.train_frames, result.validation_frames) == (3, 1)
    assert result.steps == 2 and [v["step"] for v in result.validation] == [1, 2] and result.best.exists()


@pytest.mark.slow
def test_cli_refuses_to_overwrite_a_run_and_names_the_way_out(nyu_raw_rooms, tmp_path, capsys):
    args = ["train", "vae", "--config", "tiny_vae", "--data", str(nyu_raw_rooms), "--out", str(tmp_path), "--no-progress",
            *FAST, "train.epochs=1"]
    assert cli(args) == 0
    assert '"steps": 3' in capsys.readouterr().out
    assert cli(args) == 1
    assert "exists; pass --resume to continue it or choose another --out" in capsys.readouterr().err
    assert cli([*args, "--resume", "train.epochs=2"]) == 0
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 6
    assert cli(["train", "depth", "--config", "tiny_vae", "--data", str(nyu_raw_rooms)]) == 1
    assert "is for task 'vae', not 'depth'" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_trains_with_distributed_data_parallel_on_gloo(nyu_raw_rooms, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "-m", "rgbd_vae_training.cli", "train", "vae", "--config", "tiny_vae", "--data", str(nyu_raw_rooms),
               "--out", str(tmp_path), "--no-progress", *FAST, "train.epochs=1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["distributed"] == "gloo" and payload["step"] == 3
    assert not any(k.startswith("module.") for k in payload["model"])  # saved without the DDP wrapper


@pytest.mark.slow
def test_a_full_disk_while_saving_keeps_the_previous_checkpoint_whole(nyu_raw_rooms, tmp_path, monkeypatch):
    import errno

    from rgbd_vae_training.train import loop

    good = train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path, progress=False)
    before = _digest(good.checkpoint)

    def save_until_the_disk_fills(payload, f):
        f.write(b"PK\x03\x04" + bytes(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "save_checkpoint", save_until_the_disk_fills)
    with pytest.raises(TrainingError, match="cannot write the checkpoint .* at step 6: the disk is full "
                                            r"\(No space left on device\); the previous checkpoint is kept"):
        train(_config("train.epochs=2"), nyu_raw_rooms, tmp_path, resume=True, progress=False)
    assert _digest(good.checkpoint) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "checkpoint.pt", "config.yaml", "tensorboard"]


@pytest.mark.slow
def test_a_progress_bar_counts_the_steps_when_asked(nyu_raw_rooms, tmp_path, capsys):
    train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "train conv_vae" in err and "3/3" in err
    train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path / "quiet", progress=False)
    assert "train conv_vae" not in capsys.readouterr().err


def _train_cli(out, data, *extra, env=None, limit_file_bytes=None):
    """``rgbd-vae train`` as its own process, optionally under a file size limit (a full disk)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, resource.RLIM_INFINITY))

    command = [sys.executable, "-m", "rgbd_vae_training.cli", "train", "vae", "--config", "tiny_vae", "--data",
               str(data), "--out", str(out), "--no-progress", *FAST, *extra]
    return subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, capture_output=True,
                          text=True, timeout=240, preexec_fn=limit if limit_file_bytes else None)


@pytest.mark.slow
def test_a_checkpoint_onto_a_full_disk_names_the_full_disk_and_keeps_the_previous_one(nyu_raw_rooms, tmp_path):
    good = train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path, progress=False)
    before = _digest(good.checkpoint)
    size = good.checkpoint.stat().st_size
    done = _train_cli(tmp_path, nyu_raw_rooms, "--resume", limit_file_bytes=size // 2)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"rgbd-vae train: error: cannot write the checkpoint {str(good.checkpoint)!r} at step 6: the file size limit "
        "was reached (File too large); the previous checkpoint is kept.")
    assert _digest(good.checkpoint) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "checkpoint.pt", "config.yaml", "tensorboard"]


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_is_not_finished_and_resumes_to_the_end(nyu_raw_rooms, tmp_path):
    from rgbd_vae_training.train.loop import is_finished

    config = _config()
    done = _train_cli(tmp_path, nyu_raw_rooms, env={"RGBD_VAE_KILL_AT": "checkpoint:1"})
    assert done.returncode == -9, done.stderr  # SIGKILL right after the first epoch's checkpoint
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 3 and payload["finished"] is False
    assert not is_finished(tmp_path / "checkpoint.pt", config)
    result = train(config, nyu_raw_rooms, tmp_path, resume=True, progress=False)
    assert result.steps == 6 and is_finished(result.checkpoint, config)
    assert not is_finished(result.checkpoint, _config("train.epochs=3"))  # finished, but another run


@pytest.mark.slow
def test_validate_every_spaces_the_passes_and_the_last_step_always_has_one(nyu_raw_rooms, tmp_path):
    result = train(_config("train.epochs=3", "train.validate_every=2"), nyu_raw_rooms, tmp_path, progress=False)
    assert [v["step"] for v in result.validation] == [6, 9]  # after epoch 2, and after the last step


@pytest.mark.slow
def test_each_epoch_validates_on_held_out_scenes_keeps_the_best_and_logs_the_learning_rate(nyu_raw_rooms, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rgbd_vae_training.train.validation import lr_at

    config = _config("train.epochs=3", "train.warmup_steps=2", "train.min_lr=1e-5", "train.validate_every=1")
    result = train(config, nyu_raw_rooms, tmp_path, progress=False)
    assert [v["step"] for v in result.validation] == [3, 6, 9]  # one pass per epoch over the 2 validation frames
    best = min(result.validation, key=lambda v: v["recon"])
    payload = load_checkpoint(result.best)
    assert payload["step"] == best["step"] and payload["best_metric"] == pytest.approx(best["recon"])
    assert load_checkpoint(result.checkpoint)["validation"]["recon"] == pytest.approx(result.validation[-1]["recon"])
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert {"val/loss", "val/recon", "val/kl", "train/lr"} <= set(events.Tags()["scalars"])
    recon = events.Scalars("val/recon")
    assert [e.step for e in recon] == [3, 6, 9]
    assert [e.value for e in recon] == pytest.approx([v["recon"] for v in result.validation], rel=1e-6)  # float32
    lrs = [(e.step, e.value) for e in events.Scalars("train/lr")]
    assert [s for s, _ in lrs] == list(range(1, 10))
    assert [v for _, v in lrs] == pytest.approx([lr_at(config.train, s - 1, 9) for s, _ in lrs])
    assert lrs[0][1] == pytest.approx(config.train.lr / 2) and lrs[1][1] == pytest.approx(config.train.lr)  # warm-up
    assert all(a > b for (_, a), (_, b) in zip(lrs[2:], lrs[3:])) and lrs[-1][1] > 1e-5  # cosine down towards min_lr


@pytest.mark.slow
def test_best_pt_is_chosen_on_training_rooms_held_back_and_never_on_the_test_split(nyu_raw_rooms, tmp_path):
    import contextlib

    from rgbd_vae_training.data.detect import open_dataset
    from rgbd_vae_training.train.tasks import make_task, open_samples
    from rgbd_vae_training.train.validation import split_off_validation, validate

    config = _config("train.epochs=3")
    training_split = open_dataset(nyu_raw_rooms, split="train")
    kept, held, record = split_off_validation(training_split, config.train)
    assert record["frames"] == len(held) == 2
    test_rooms = set(open_dataset(nyu_raw_rooms, split="test").frame_scenes)
    held_rooms, kept_rooms = set(held.frame_scenes), set(kept.frame_scenes)
    assert len(held_rooms) == 1 and len(kept_rooms) == 3 and held_rooms.isdisjoint(kept_rooms | test_rooms)
    result = train(config, nyu_raw_rooms, tmp_path, progress=False)
    assert (result.train_frames, result.validation_frames) == (6, 2)
    payload = load_checkpoint(result.best)
    task, model = make_task(config), model_from_checkpoint(result.best)

    def recon(samples):
        return validate(model, task, samples, 2, torch.device("cpu"), contextlib.nullcontext(), payload["step"])["recon"]

    # best.pt's metric is its model's reconstruction error on the held-back frames, not on the test split's
    assert recon(open_samples(task, nyu_raw_rooms, "train", False, reader=held)) == pytest.approx(
        payload["best_metric"], rel=1e-4)
    assert recon(open_samples(task, nyu_raw_rooms, "test", False)) != pytest.approx(payload["best_metric"], rel=1e-2)
    assert train(_config("train.validate=false"), nyu_raw_rooms, tmp_path / "all", progress=False).train_frames == 8


@pytest.mark.slow
def test_resume_refuses_a_run_that_held_back_other_frames_to_validate_on(nyu_raw_rooms, tmp_path):
    from rgbd_vae_ros.models.checkpoint import save_checkpoint

    train(_config("train.epochs=1"), nyu_raw_rooms, tmp_path / "held", progress=False)
    for overrides, held_now in ((["train.validate=false"], "0"), (["train.validation_share=0.5"], "4")):
        with pytest.raises(TrainingError, match=f"the checkpoint's run held back 2 training frames to validate on, "
                                                f"this run would hold back {held_now}; keep the data, train.validate"):
            train(_config("train.epochs=2", *overrides), nyu_raw_rooms, tmp_path / "held", resume=True, progress=False)
    # as many frames, but other ones (the data changed under the run): the record's digest differs
    payload = load_checkpoint(tmp_path / "held" / "checkpoint.pt")
    payload["held_out"] = {**payload["held_out"], "digest": "0" * 16}
    with open(tmp_path / "held" / "checkpoint.pt", "wb") as f:
        save_checkpoint(payload, f)
    with pytest.raises(TrainingError, match=r"held back 2 training frames to validate on, this run would hold back 2 "
                                            r"\(other ones\)"):
        train(_config("train.epochs=2"), nyu_raw_rooms, tmp_path / "held", resume=True, progress=False)
    # a checkpoint written before frames were held back (its run trained on all 8 training frames)
    old = tmp_path / "old"
    train(_config("train.epochs=1", "train.validate=false"), nyu_raw_rooms, old, progress=False)
    payload = load_checkpoint(old / "checkpoint.pt")
    del payload["held_out"]
    with open(old / "checkpoint.pt", "wb") as f:
        save_checkpoint(payload, f)
    with pytest.raises(TrainingError, match="was written before train held validation frames back .* resume it with "
                                            "train.validate=false, or start a new run"):
        train(_config("train.epochs=2"), nyu_raw_rooms, old, resume=True, progress=False)
    resumed = train(_config("train.epochs=2", "train.validate=false"), nyu_raw_rooms, old, resume=True, progress=False)
    assert resumed.steps == 8 and len(resumed.losses) == 4


@pytest.mark.slow
def test_the_command_says_when_no_frames_could_be_held_back(nyu_raw_dir, tmp_path):
    done = _train_cli(tmp_path, nyu_raw_dir, "train.validation_share=0.1")  # 2 training rooms: 0.2 of a room
    assert done.returncode == 0, done.stderr
    assert "no frames were held back to validate on (train.validation_share 0.1 of the training split's rooms " \
           "rounds to none" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["frames"] == {"train": 6, "validation": 0}
    assert not (tmp_path / "best.pt").exists()


def test_the_resolved_config_beside_the_checkpoint_reloads_as_the_same_run(nyu_raw_rooms, tmp_path):
    config = _config("train.epochs=1")
    train(config, nyu_raw_rooms, tmp_path, progress=False)
    text = (tmp_path / "config.yaml").read_text()
    assert "lr_schedule: cosine" in text and "num_workers: 0" in text  # defaults written out too
    assert load_config(tmp_path / "config.yaml").to_dict() == config.to_dict()


def test_warm_up_then_cosine_down_to_min_lr_or_constant_when_asked():
    from rgbd_vae_training.train.config import TrainSettings
    from rgbd_vae_training.train.validation import lr_at

    settings = TrainSettings(lr=1.0, warmup_steps=4, min_lr=0.1)
    assert [lr_at(settings, s, 104) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(settings, 54, 104) == pytest.approx(0.55)  # half way down the cosine
    assert lr_at(settings, 104, 104) == pytest.approx(0.1) and lr_at(settings, 500, 104) == pytest.approx(0.1)
    constant = TrainSettings(lr=0.4, lr_schedule="constant", warmup_steps=4)
    assert [lr_at(constant, s, 10) for s in (0, 3, 4, 9, 20)] == [0.1, 0.4, 0.4, 0.4, 0.4]


@pytest.mark.slow
def test_the_next_run_removes_the_checkpoint_file_a_killed_run_was_writing(nyu_raw_rooms, tmp_path):
    done = _train_cli(tmp_path, nyu_raw_rooms, env={"RGBD_VAE_KILL_AT": "checkpoint-unrenamed:1"})
    assert done.returncode == -9, done.stderr  # killed with the first checkpoint written but not renamed
    [leftover] = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftover.startswith(".checkpoint.pt.") and not (tmp_path / "checkpoint.pt").exists()
    result = train(_config(), nyu_raw_rooms, tmp_path, progress=False)
    assert result.steps == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "checkpoint.pt", "config.yaml", "tensorboard"]


def test_on_the_cpu_a_model_trains_on_channels_last_weights_and_computes_the_same_step():
    """The layout changes how oneDNN walks memory, not what a step computes: from the same weights
    on the same batch, the same loss and the same gradients up to the order of float sums."""
    import copy

    from rgbd_vae_training.train.loop import _build, to_training_layout
    from rgbd_vae_training.train.tasks import make_task

    config = load_config("tiny_vae")
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model, _ = _build(config, cpu)
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    plain = to_training_layout(copy.deepcopy(model), cpu, torch.contiguous_format)
    assert all(p.is_contiguous() for p in plain.parameters())
    task = make_task(config)
    generator = torch.Generator().manual_seed(0)
    batch = {"rgb": torch.rand(8, 3, 64, 64, generator=generator) * 2 - 1,
             "depth": torch.rand(8, 1, 64, 64, generator=generator) * 2 - 1,
             "valid": torch.rand(8, 1, 64, 64, generator=generator) > 0.2}
    prepared = task.prepare(batch, cpu)
    losses = []
    for net in (model, plain):
        torch.manual_seed(1)  # the same sampling noise
        loss = task.loss(task.forward(net.train(), prepared), prepared, step=0)["loss"]
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    # float sums in another order: the encoder's gradients, sums of large terms that mostly cancel
    # (the ELBO sums squared errors over pixels), differ by up to about 1 % for some initial
    # weights; a layout mistake (a weight read in the wrong order) would differ by the whole gradient
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        assert ((a.grad - b.grad).norm() / b.grad.norm()).item() < 0.05, name


@pytest.mark.slow
def test_a_checkpoint_written_before_later_settings_existed_is_still_its_own_run(nyu_raw_rooms, tmp_path):
    """Settings added since a checkpoint was written (unet_depth's head, train.lens_roundtrip,
    loss.w_log_depth) read as their defaults, which are what its run did: it is reused as finished,
    resumed and taken as init_weights, and a run with the new settings on is another run."""
    from rgbd_vae_training.train.loop import is_finished

    small = ["model.input_height=24", "model.input_width=32", "train.batch_size=2", "train.validate=false"]
    before = ["model.head=tanh", "loss.w_log_depth=0", "loss.w_l1=1", "train.lens_roundtrip=0"]
    config = load_config("tiny_depth", [*small, *before, "train.max_steps=2"])
    result = train(config, nyu_raw_rooms, tmp_path / "old", progress=False)
    payload = load_checkpoint(result.checkpoint)
    del payload["model_config"]["head"], payload["config"]["model"]["head"]  # as written before they existed
    del payload["config"]["train"]["lens_roundtrip"], payload["config"]["loss"]["w_log_depth"]
    torch.save(payload, result.checkpoint)
    assert model_from_checkpoint(result.checkpoint).config.head == "tanh"
    assert is_finished(result.checkpoint, config)
    assert not is_finished(result.checkpoint, load_config("tiny_depth", [*small, "train.max_steps=2"]))  # log head
    longer = load_config("tiny_depth", [*small, *before, "train.max_steps=3"])
    assert train(longer, nyu_raw_rooms, tmp_path / "old", resume=True, progress=False).steps == 3
    started = train(load_config("tiny_depth", [*small, *before, "train.max_steps=1",
                                               f"train.init_weights={result.checkpoint}"]),
                    nyu_raw_rooms, tmp_path / "init", progress=False)
    assert started.steps == 1
    with pytest.raises(TrainingError, match="train.init_weights: .* another configuration"):
        train(load_config("tiny_depth", [*small, "train.max_steps=1", f"train.init_weights={result.checkpoint}"]),
              nyu_raw_rooms, tmp_path / "log", progress=False)
