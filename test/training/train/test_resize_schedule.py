"""Progressive resizing (``train.resize_schedule``): the model sees the sizes in order, a resumed
run continues at the right size, a bad schedule is one clear error."""

import pytest
import torch

from rgbd_vae_ros.models import load_checkpoint
from rgbd_vae_ros.models.mff_depth import MFFDepth
from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.train.config import ConfigError, load_config, resize_at
from rgbd_vae_training.train.loop import TrainingError, train

# a very small mff_depth at 48x64; 6 training frames -> 3 steps of 2 per epoch
SMALL = ["model.input_height=48", "model.input_width=64", "model.encoder_widths=[4, 8, 8, 16]",
         "model.decoder_widths=[8, 8, 4, 4, 4]", "model.mff_width=2", "model.refine_width=4",
         "train.batch_size=2", "train.epochs=3", "train.max_steps=0", "train.validate=false",
         "train.augment=false", "train.log_every=1"]
SCHEDULE = "train.resize_schedule=[[0, [24, 32]], [1, [36, 48]], [2, [48, 64]]]"


def _config(*extra):
    return load_config("tiny_mff_depth", [*SMALL, SCHEDULE, *extra])


class InputSizes:
    """A real forward pre-hook on every module, keeping the input size of each training-mode call of
    an mff_depth model (validation and the schedule's probe run in eval mode)."""

    def __enter__(self):
        self.sizes = []

        def hook(module, args):
            if isinstance(module, MFFDepth) and module.training:
                self.sizes.append(tuple(args[0].shape[-2:]))

        self.handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.slow
def test_the_model_sees_the_sizes_of_the_schedule_in_order(nyu_raw_dir, tmp_path):
    with InputSizes() as seen:
        result = train(_config(), nyu_raw_dir, tmp_path, progress=False)
    assert result.steps == 9
    assert seen.sizes == [(24, 32)] * 3 + [(36, 48)] * 3 + [(48, 64)] * 3
    record = load_checkpoint(result.checkpoint)["resize"]
    assert record == {"schedule": [[0, [24, 32]], [1, [36, 48]], [2, [48, 64]]], "next_epoch": 3, "next_size": [48, 64]}
    # no schedule: every step at the model's size
    with InputSizes() as plain:
        train(load_config("tiny_mff_depth", [*SMALL, "train.epochs=1"]), nyu_raw_dir, tmp_path / "plain", progress=False)
    assert plain.sizes == [(48, 64)] * 3


@pytest.mark.slow
def test_resume_in_the_middle_of_the_schedule_continues_at_the_right_size(nyu_raw_dir, tmp_path):
    straight = train(_config(), nyu_raw_dir, tmp_path / "a", progress=False)
    first = train(_config("train.max_steps=4"), nyu_raw_dir, tmp_path / "b", progress=False)
    assert first.steps == 4  # one step into the second epoch (36x48)
    assert load_checkpoint(first.checkpoint)["resize"]["next_size"] == [36, 48]
    with InputSizes() as seen:
        resumed = train(_config(), nyu_raw_dir, tmp_path / "b", resume=True, progress=False)
    assert seen.sizes == [(36, 48)] * 2 + [(48, 64)] * 3
    assert resumed.losses == pytest.approx(straight.losses[4:], rel=1e-4)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # a resumed run with another schedule would train at sizes the checkpoint never planned
    other = "train.resize_schedule=[[0, [24, 32]], [2, [48, 64]]]"
    with pytest.raises(TrainingError, match="was trained with train.resize_schedule .* keep the schedule"):
        train(_config(other), nyu_raw_dir, tmp_path / "b", resume=True, progress=False)


@pytest.mark.parametrize("schedule, message", [
    ("[[1, [24, 32]], [2, [48, 64]]]", "must start at epoch 0, its first entry is at epoch 1"),
    ("[[0, [24, 32]], [3, [36, 48]], [2, [48, 64]]]", "epochs must rise, but epoch 2 follows epoch 3"),
    ("[[0, 24], [2, [48, 64]]]", r"entry \[0, 24\] is not \[epoch, \[height, width\]\] in whole numbers"),
    ("[[0, [24, 32]], [2, [36, 48]]]", "ends at 36x48, not at the mff_depth input size 48x64"),
    ("[[0, [24, 32]], [2, [96, 128]]]", "size 96x128 \\(epoch 2\\) is larger than the mff_depth input size 48x64"),
    ("[[0, [32, 32]], [2, [48, 64]]]", "size 32x32 \\(epoch 0\\) is not of the mff_depth input's aspect ratio"),
    ("5", "train.resize_schedule must be tuple, got 5"),
])
def test_a_bad_schedule_is_one_clear_error(schedule, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny_mff_depth", [*SMALL, f"train.resize_schedule={schedule}"])


def test_a_bad_schedule_on_the_command_line_is_one_sentence_and_no_run(nyu_raw_dir, tmp_path, capsys):
    code = cli(["train", "depth", "--config", "tiny_mff_depth", "--data", str(nyu_raw_dir), "--out", str(tmp_path / "run"),
                "--no-progress", *SMALL, "train.resize_schedule=[[0, [24, 32]], [2, [36, 48]]]"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "add a last entry with that size" in err
    assert not (tmp_path / "run").exists()


def test_a_model_of_fixed_input_size_cannot_resize_and_says_so(nyu_raw_dir, tmp_path):
    config = load_config("tiny_vae", ["model.image_size=32", "model.widths=[8, 16, 16]", "model.latent_dim=8",
                                      "train.batch_size=2", "train.epochs=2",
                                      "train.resize_schedule=[[0, [16, 16]], [1, [32, 32]]]"])
    with pytest.raises(TrainingError, match="conv_vae cannot take a 16x16 input .* needs a model whose input size can change"):
        train(config, nyu_raw_dir, tmp_path, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_size_of_an_epoch_is_the_last_entry_started_by_then():
    schedule = ((0, (24, 32)), (2, (36, 48)), (5, (48, 64)))
    assert [resize_at(schedule, e) for e in range(7)] == [(24, 32)] * 2 + [(36, 48)] * 3 + [(48, 64)] * 2
    assert resize_at((), 3) is None
