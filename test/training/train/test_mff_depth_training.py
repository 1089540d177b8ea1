"""tiny_mff_depth trained through ``rgbd-vae train depth``: the loss falls and the learnt validity
mask finds the holes of held-out frames (IR shadows, the registration border) better than calling
every pixel valid."""

import json

import pytest
import torch

from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint
from rgbd_vae_training.cli import main as cli
from rgbd_vae_training.train.config import config_from_values
from rgbd_vae_training.train.tasks import make_task, open_samples


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a & b).sum() / (a | b).sum()).item()


@pytest.mark.slow
def test_tiny_mff_depth_learns_depth_and_a_mask_of_the_valid_pixels(learning_data, tmp_path, capsys):
    code = cli(["train", "depth", "--config", "tiny_mff_depth", "--data", str(learning_data), "--out", str(tmp_path),
                "--no-progress", "train.max_steps=150", "model.input_height=48", "model.input_width=64"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "mff_depth" and summary["steps"] == 150
    assert summary["last_loss"] < 0.5 * summary["first_loss"]
    # the tiny configs hold no rooms back: every training frame trains, and there is no best.pt
    assert summary["frames"] == {"train": 55, "validation": 0} and summary["best"] is None

    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    model = model_from_checkpoint(payload).eval()
    task = make_task(config_from_values(payload["config"]))
    held_out = open_samples(task, learning_data, "test", augment=False)
    batch = {key: torch.stack([held_out[i][key] for i in range(len(held_out))]) for key in ("rgb", "valid")}
    valid = batch["valid"]  # (N, 1, H, W): where the true depth is valid
    assert 0.5 < valid.float().mean() < 0.98  # the frames do have holes
    with torch.no_grad():
        logits = model(batch["rgb"])["mask"]
    cross_entropy = torch.nn.functional.binary_cross_entropy_with_logits(logits, valid.float()).item()
    assert cross_entropy < 0.3  # 0.69 is a coin toss
    trusted = logits > 0
    assert _iou(trusted, valid) > _iou(torch.ones_like(valid), valid) + 0.05


def test_encoder_weights_need_a_model_with_a_resnet_encoder(nyu_raw_dir, tmp_path):
    from rgbd_vae_training.train.config import load_config
    from rgbd_vae_training.train.loop import TrainingError, train

    config = load_config("tiny_depth", ["train.batch_size=2", f"train.encoder_weights={tmp_path / 'resnet18.pth'}"])
    with pytest.raises(TrainingError, match="applies to models with a ResNet encoder .* not unet_depth"):
        train(config, nyu_raw_dir, tmp_path / "run", progress=False)
