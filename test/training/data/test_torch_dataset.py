"""Readers feed a DataLoader with workers as normalised tensors; augmentation moves RGB and depth together."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rgbd_vae_training.data.frame import RGBDFrame
from rgbd_vae_training.data.nyu_mat import LABELED_NAME, NYULabeled
from rgbd_vae_training.data.nyu_raw import NYURawScenes
from rgbd_vae_training.data.torch_dataset import Augment, RGBDDataset


@pytest.mark.slow
def test_dataloader_with_workers_yields_normalised_batches(nyu_raw_dir, nyu_mat_dir):
    for reader in (NYURawScenes(nyu_raw_dir), NYULabeled(nyu_mat_dir / LABELED_NAME)):
        dataset = RGBDDataset(reader, 64, 64, augment=Augment())
        batches = list(DataLoader(dataset, batch_size=3, num_workers=2))
        assert sum(len(b["rgb"]) for b in batches) == len(reader)
        batch = batches[0]
        assert batch["rgb"].shape == (3, 3, 64, 64) and batch["depth"].shape == (3, 1, 64, 64)
        assert batch["rgb"].min() >= -1 and batch["rgb"].max() <= 1
        assert batch["valid"].dtype == torch.bool and batch["valid"].float().mean() > 0.5
        valid_depth = batch["depth"][batch["valid"]]
        assert valid_depth.min() > -1 and valid_depth.max() <= 1


def test_flip_moves_rgb_and_depth_together():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, 0] = 255
    depth = np.full((4, 6), 5.0, np.float32)
    depth[:, 0] = 1.0
    frame = RGBDFrame(rgb, depth)
    flipped = [Augment(hflip=True, channel_swap=False)(frame, np.random.default_rng(s)) for s in range(20)]
    assert any(f.rgb_u8[0, -1, 0] == 255 for f in flipped)
    for f in flipped:
        assert (f.rgb_u8[0, -1, 0] == 255) == (f.depth_m[0, -1] == 1.0)


def test_random_crop_keeps_rgb_and_depth_aligned():
    rgb = np.arange(10 * 10, dtype=np.uint8).reshape(10, 10, 1).repeat(3, axis=2)
    depth = np.arange(10 * 10, dtype=np.float32).reshape(10, 10)
    out = Augment(hflip=False, channel_swap=False, crop_fraction=0.5)(RGBDFrame(rgb, depth), np.random.default_rng(3))
    assert out.rgb_u8.shape[:2] == out.depth_m.shape == (5, 5)
    np.testing.assert_array_equal(out.rgb_u8[:, :, 0].astype(np.float32), out.depth_m)


def test_depth_holes_take_readings_out_of_some_frames_and_leave_rgb_and_the_rest_alone():
    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    depth = np.random.default_rng(1).uniform(0.5, 8.0, (30, 40)).astype(np.float32)
    frame = RGBDFrame(rgb, depth)
    plain = Augment(hflip=True, channel_swap=True)
    holed = Augment(hflip=True, channel_swap=True, depth_holes=0.5)
    shares = []
    for seed in range(200):
        a, b = plain(frame, np.random.default_rng(seed)), holed(frame, np.random.default_rng(seed))
        np.testing.assert_array_equal(a.rgb_u8, b.rgb_u8)  # the same flips and swaps: holes are drawn after them
        kept = ~np.isnan(b.depth_m)
        np.testing.assert_array_equal(b.depth_m[kept], a.depth_m[kept])  # what stays is the reading it was
        shares.append(1 - kept.mean())
    holed_frames = [s for s in shares if s > 0]
    assert 70 <= len(holed_frames) <= 130  # about half of them
    assert 0.005 < min(holed_frames) and max(holed_frames) < 0.7 and np.mean(holed_frames) > 0.08
    assert not np.isnan(depth).any()  # the frame itself is not changed
    for seed in range(50):  # depth_holes=1: every frame has one
        hole = np.isnan(Augment(hflip=False, channel_swap=False, depth_holes=1.0)(
            frame, np.random.default_rng(seed)).depth_m)
        assert hole.any()
    with pytest.raises(ValueError, match="depth_holes is a share of the frames"):
        from rgbd_vae_training.train.config import TrainSettings

        TrainSettings(depth_holes=1.5)


def test_lens_roundtrip_sends_a_share_of_the_rgb_through_the_nyu_lens_and_back_and_leaves_depth_alone():
    from rgbd_vae_training.data.nyu_calibration import distort_rgb, undistort_rgb
    from rgbd_vae_training.synth.generate import generate_scene

    rendered = next(iter(generate_scene(seed=5, scene_index=1, frames=1, width=128, height=96, synchronised=True)))
    frame = RGBDFrame(rendered.rgb_u8, rendered.depth_rgb_m)  # pinhole RGB and its full-frame depth (labeled layout)
    through = undistort_rgb(distort_rgb(frame.rgb_u8))  # as the NYU raw reader's RGB reads
    assert (through[0, 0] == 0).all() and not np.array_equal(through, frame.rgb_u8)  # black corners, softer
    lens = Augment(hflip=False, channel_swap=False, lens_roundtrip=1.0)(frame, np.random.default_rng(0))
    np.testing.assert_array_equal(lens.rgb_u8, through)
    np.testing.assert_array_equal(lens.depth_m, frame.depth_m)  # the lens moves no pixel of the pinhole view
    plain, half = Augment(hflip=False, channel_swap=False), Augment(hflip=False, channel_swap=False, lens_roundtrip=0.5)
    lensed = 0
    for seed in range(40):
        a, b = plain(frame, np.random.default_rng(seed)), half(frame, np.random.default_rng(seed))
        lensed += not np.array_equal(a.rgb_u8, b.rgb_u8)
        np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert 10 <= lensed <= 30  # about half of them
    for seed in range(5):  # 0 (the default) draws nothing: every other config augments as before
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        np.testing.assert_array_equal(Augment()(frame, rng_a).rgb_u8, Augment(lens_roundtrip=0.0)(frame, rng_b).rgb_u8)
        assert rng_a.random() == rng_b.random()
    with pytest.raises(ValueError, match="lens_roundtrip is a share of the frames"):
        from rgbd_vae_training.train.config import TrainSettings

        TrainSettings(lens_roundtrip=-0.1)


def test_the_training_setting_lens_roundtrip_reaches_the_training_samples_only(nyu_mat_dir):
    from rgbd_vae_training.data.torch_dataset import lens_roundtrip_rgb
    from rgbd_vae_training.train.config import load_config
    from rgbd_vae_training.train.tasks import TaskError, make_task, open_samples

    for name in ("tiny_depth", "tiny_vae"):
        task = make_task(load_config(name, ["train.lens_roundtrip=0.75"]))
        assert open_samples(task, nyu_mat_dir, "train", augment=True).augment.lens_roundtrip == 0.75
        assert open_samples(task, nyu_mat_dir, "test", augment=False).augment is None  # never on what is scored
    # the lens model covers the NYU camera's 4:3 view: frames cropped to a square model's aspect are refused
    square = make_task(load_config("tiny_depth", ["model.input_height=64", "model.input_width=64"]))
    with pytest.raises(TaskError, match=r"covers a 4:3 frame, but .* gives frames of 120x120 to augment; set it to 0"):
        open_samples(square, nyu_mat_dir, "train", augment=True)
    open_samples(square, nyu_mat_dir, "train", augment=False)  # without augmentation nothing goes through it
    with pytest.raises(ValueError, match="needs a 4:3 frame, got 24x24"):
        lens_roundtrip_rgb(np.zeros((24, 24, 3), np.uint8))


def test_image_folder_samples_are_centre_cropped_squares_without_depth(tmp_path):
    from PIL import Image

    from rgbd_vae_training.data.image_folder import ImageFolder

    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255  # the centred 20x20 square is all white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    sample = RGBDDataset(ImageFolder(tmp_path), 8, 8, square_crop=True)[0]
    assert set(sample) == {"rgb"} and sample["rgb"].shape == (3, 8, 8)
    assert torch.all(sample["rgb"] == 1.0)


class _CountingReader:
    """Frames of a list, counting the reads."""

    def __init__(self, frames):
        self.frames, self.reads = frames, 0

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        self.reads += 1
        return self.frames[index]


def test_a_cached_set_reads_each_frame_once_and_its_samples_stay_as_made():
    rng = np.random.default_rng(0)
    frames = [RGBDFrame(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
                        rng.uniform(0.5, 5.0, (12, 16)).astype(np.float32)) for _ in range(3)]
    plain = RGBDDataset(_CountingReader(frames), 6, 8, cache_frames=False)
    for augment in (None, Augment()):
        reader = _CountingReader(frames)
        cached = RGBDDataset(reader, 6, 8, augment=augment, cache_frames=True)
        first = [cached[i] for i in range(3)]
        for sample in first:  # a caller that changes a sample in place changes only its own copy
            sample["rgb"].fill_(0.0)
        again = [cached[i] for i in range(3)]
        assert reader.reads == 3
        if augment is None:  # the same sample as an uncached set's, every time
            for i, sample in enumerate(again):
                for key, value in plain[i].items():
                    torch.testing.assert_close(sample[key], value, rtol=0, atol=0)
        else:
            assert all(s["rgb"].abs().sum() > 0 for s in again)


@pytest.mark.slow
def test_preloaded_frames_feed_every_epochs_workers_without_reading_the_files_again(nyu_raw_dir, tmp_path):
    """train.cache_frames with loader workers: the frames are read once, before the first epoch; the
    workers of each epoch (started anew) give the samples of an uncached set from the copies alone."""
    import shutil

    copy = tmp_path / "nyu_raw"
    shutil.copytree(nyu_raw_dir, copy)
    for augment in (None, Augment()):
        cached = RGBDDataset(NYURawScenes(copy), 24, 32, augment=augment, seed=5, cache_frames=True)
        plain = RGBDDataset(NYURawScenes(nyu_raw_dir), 24, 32, augment=augment, seed=5)
        cached.preload(workers=2)
        assert len(cached.frames if augment else cached.samples) == len(plain) == 9
        if augment is None:  # the samples themselves, made once from the preloaded frames
            for i in range(len(plain)):
                for key, value in plain[i].items():
                    torch.testing.assert_close(cached[i][key], value, rtol=0, atol=0)
            continue
        shutil.rmtree(copy)  # nothing left on disk to read
        for epoch in (0, 1):
            cached.epoch = plain.epoch = epoch
            batches = list(DataLoader(cached, batch_size=4, num_workers=2))
            expected = [plain[i] for i in range(len(plain))]
            for key in ("rgb", "depth", "valid"):
                torch.testing.assert_close(torch.cat([b[key] for b in batches]),
                                           torch.stack([e[key] for e in expected]), rtol=0, atol=0)
        cached.preload(workers=2)  # all there: reads nothing


def test_a_frame_made_a_sample_without_a_generator_is_augmented_the_same_way_every_time():
    rng = np.random.default_rng(1)
    frame = RGBDFrame(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), rng.uniform(0.5, 5.0, (12, 16)).astype(np.float32))
    dataset = RGBDDataset(_CountingReader([frame]), 6, 8, augment=Augment(), seed=4)
    first, second = dataset.sample(frame), dataset.sample(frame)
    assert all(torch.equal(first[key], second[key]) for key in first)
