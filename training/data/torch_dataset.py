"""Readers as PyTorch datasets: resize, normalise to [-1, 1] with the runtime's processing, augment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from rgbd_vae_ros.processing import depth_to_unit_range, resize_depth, resize_rgb, rgb_to_unit_range

from .frame import RGBDFrame, same_aspect


@dataclass
class Augment:
    """Training augmentation: flips RGB and depth together, swaps RGB channels, random crop,
    (``lens_roundtrip`` > 0) sends that share of the frames' RGB through the NYU RGB lens and back, as
    the NYU raw reader's RGB is (:func:`lens_roundtrip_rgb`), and (``depth_holes`` > 0) takes the depth
    readings out of made-up holes in that share of the frames."""

    hflip: bool = True
    channel_swap: bool = True
    crop_fraction: float = 1.0  # < 1: crop this fraction of each side at a random place
    depth_holes: float = 0.0
    lens_roundtrip: float = 0.0

    def __call__(self, frame: RGBDFrame, rng: np.random.Generator) -> RGBDFrame:
        rgb, depth = frame.rgb_u8, frame.depth_m
        if self.lens_roundtrip > 0 and rng.random() < self.lens_roundtrip:  # first: the lens saw the whole frame
            rgb = lens_roundtrip_rgb(rgb)
        if self.crop_fraction < 1.0:
            h, w = rgb.shape[:2]
            ch, cw = max(1, int(h * self.crop_fraction)), max(1, int(w * self.crop_fraction))
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            rgb = rgb[top:top + ch, left:left + cw]
            depth = None if depth is None else depth[top:top + ch, left:left + cw]
        if self.hflip and rng.random() < 0.5:
            rgb = rgb[:, ::-1]
            depth = None if depth is None else depth[:, ::-1]
        if self.channel_swap and rng.random() < 0.5:
            rgb = rgb[:, :, rng.permutation(3)]
        if depth is not None and self.depth_holes > 0 and rng.random() < self.depth_holes:
            depth = with_holes(depth, rng)
        return RGBDFrame(np.ascontiguousarray(rgb), None if depth is None else np.ascontiguousarray(depth),
                         frame.scene, frame.stamp_s, frame.label)


def fits_nyu_lens(height: int, width: int) -> bool:
    """Whether a frame of ``height`` x ``width`` is the 4:3 view the NYU Kinect's lens model covers
    (its calibration is scaled to the frame's size; on another aspect it would be stretched)."""
    from .nyu_calibration import HEIGHT, WIDTH

    return same_aspect(height, width, (HEIGHT, WIDTH))


def lens_roundtrip_rgb(rgb_u8: np.ndarray) -> np.ndarray:
    """RGB rendered as a pinhole camera sees it, as a NYU raw frame reads: through the Kinect's RGB lens
    (recorded) and undistorted again by the reader, which softens it and blackens the corners the lens
    did not see. The pixels stay where they were, so the depth needs nothing."""
    from .nyu_calibration import distort_rgb, undistort_rgb

    height, width = rgb_u8.shape[:2]
    if not fits_nyu_lens(height, width):
        raise ValueError(f"the NYU lens round trip needs a 4:3 frame, got {width}x{height}")
    return undistort_rgb(distort_rgb(rgb_u8))


def with_holes(depth_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``depth_m`` without readings (NaN) in the holes a depth camera leaves: strips along
    some of its edges (a registration border, as NYU raw's frame of 2-9 % a side), and rectangles (dark,
    shiny or distant surfaces, the projector's shadows); at least one of them."""
    out = np.array(depth_m, dtype=np.float32)
    h, w = out.shape
    sides, boxes = rng.random(4) < 0.5, int(rng.integers(0, 3))
    if not sides.any() and boxes == 0:
        boxes = 1
    for side in np.flatnonzero(sides):
        size = max(1, int(round(rng.uniform(0.02, 0.15) * (h if side < 2 else w))))
        out[(np.s_[:size], np.s_[h - size:], np.s_[:, :size], np.s_[:, w - size:])[side]] = np.nan
    for _ in range(boxes):
        bh, bw = max(1, int(rng.uniform(0.05, 0.3) * h)), max(1, int(rng.uniform(0.05, 0.3) * w))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        out[top:top + bh, left:left + bw] = np.nan
    return out


def centre_square(frame: RGBDFrame) -> RGBDFrame:
    """The largest centred square (for image-folder data sets such as MS-COCO)."""
    h, w = frame.rgb_u8.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = (slice(top, top + side), slice(left, left + side))
    return RGBDFrame(frame.rgb_u8[crop], None if frame.depth_m is None else frame.depth_m[crop],
                     frame.scene, frame.stamp_s, frame.label)


def _as_read(frame: RGBDFrame) -> RGBDFrame:
    """The DataLoader's collate for frames: each as read, not made tensors."""
    return frame


class RGBDDataset(Dataset):
    """Samples as tensors: ``rgb`` (3, H, W) and, with depth, ``depth`` (1, H, W) in [-1, 1] and
    ``valid`` (1, H, W) bool; ``label`` where the reader has one. ``augment`` only for training.
    ``cache_frames`` keeps each frame as read (small data sets read once, augmented every epoch); without
    augmentation it keeps the sample itself, which is then the same every time."""

    def __init__(self, reader, height: int, width: int, max_depth_m: float = 10.0,
                 augment: Augment | None = None, square_crop: bool = False, seed: int = 0,
                 cache_frames: bool = False):
        self.reader, self.height, self.width = reader, height, width
        # with cache_frames: index -> the frame as read (augmented anew each time), or without
        # augmentation index -> the sample, which is then the same every time (made once)
        self.frames = {} if cache_frames and augment is not None else None
        self.samples = {} if cache_frames and augment is None else None
        self.max_depth_m, self.augment, self.square_crop, self.seed = max_depth_m, augment, square_crop, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.reader)

    def frame(self, index: int) -> RGBDFrame:
        """The frame at ``index`` as read (from the cache where it holds frames)."""
        if self.frames is None:
            return self.reader[index]
        if index not in self.frames:
            self.frames[index] = self.reader[index]
        return self.frames[index]

    def preload(self, workers: int) -> None:
        """With ``cache_frames``: read every frame now, on ``workers`` processes, into this process's
        cache. The DataLoader's workers, started anew each epoch, then take their copies of the
        frames with them; a cache they filled themselves would go with them at the end of the epoch."""
        if self.frames is None and self.samples is None:
            return
        from torch.utils.data import DataLoader, Subset

        missing = [i for i in range(len(self)) if i not in (self.frames if self.samples is None else self.samples)]
        # its own generator: the workers' seeds are not drawn from torch's, which then inits the model
        reads = DataLoader(Subset(self.reader, missing), batch_size=None, num_workers=workers, collate_fn=_as_read,
                           generator=torch.Generator())
        for index, frame in zip(missing, reads):
            if self.samples is None:
                self.frames[index] = frame
            else:
                self.samples[index] = self.sample(frame)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.samples is None:
            return self.sample(self.frame(index), np.random.default_rng([self.seed, self.epoch, index]))
        if index not in self.samples:
            self.samples[index] = self.sample(self.reader[index])
        return {key: value.clone() for key, value in self.samples[index].items()}  # a caller may change its copy

    def sample(self, frame: RGBDFrame, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """``frame`` (one of :meth:`frame`'s) as tensors, augmented with ``rng`` (default: one seeded
        by the set's seed) if the set augments."""
        if self.square_crop:
            frame = centre_square(frame)
        if self.augment is not None:
            frame = self.augment(frame, rng if rng is not None else np.random.default_rng(self.seed))
        rgb = resize_rgb(frame.rgb_u8, self.height, self.width)
        sample = {"rgb": torch.from_numpy(rgb_to_unit_range(rgb)).permute(2, 0, 1)}  # (3, H, W)
        if frame.depth_m is not None:
            depth_unit, valid = depth_to_unit_range(resize_depth(frame.depth_m, self.height, self.width),
                                                    self.max_depth_m)
            sample["depth"] = torch.from_numpy(depth_unit)[None]  # (1, H, W)
            sample["valid"] = torch.from_numpy(valid)[None]
        if frame.label is not None:
            sample["label"] = torch.tensor(frame.label)
        return sample
