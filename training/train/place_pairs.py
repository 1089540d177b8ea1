"""Views of one room for the VAE's place term (issue 16): ``loss.place_weight`` > 0 trains μ so that
two views of a room score a higher cosine than views of other rooms, which is how
``place_recognition`` (SPEC §4.6) matches codes.

The views come from a revisit walk (``rgbd-vae synth --walk revisit``, ``train.place_data``): its
``places.csv`` says the room and visit of every frame, and the visits look at the room from yaw
offsets of known angle. Each optimiser step draws ``train.place_rooms`` rooms and, per room, two
frames of different visits; their μ enter an InfoNCE term (:func:`..losses.info_nce`), each view's
partner the positive and every other view of the step a negative. The draw is fixed by
(``train.seed``, step, rank), so a resumed run draws what the first run would have.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .tasks import TaskError, open_samples


class PlacePairs:
    """Two views of each of ``rooms`` rooms per step, from the revisit walk at ``path``."""

    def __init__(self, task, path: str | os.PathLike, rooms: int, seed: int = 0, rank: int = 0, cache: bool = True):
        from ..synth.revisit import read_places

        try:
            rows = read_places(path)
        except (FileNotFoundError, ValueError) as exc:
            raise TaskError(f"train.place_data: {exc}") from None
        # not augmented: a channel swap of one view and not the other would teach the code to ignore colour
        self.dataset = open_samples(task, path, None, False, seed, cache)
        by_stamp = {round(r["depth_stamp_s"], 4): r for r in rows}
        reader = self.dataset.reader
        while not hasattr(reader, "pairs"):  # a walk is NYU raw scene folders (AspectFrames may wrap them)
            reader = getattr(reader, "reader", None)
            if reader is None:
                raise TaskError(f"train.place_data {str(path)!r} holds a places.csv but not a walk's NYU raw scene "
                                "folders; write one with 'rgbd-vae synth --walk revisit'")
        room, visit = [], []
        for _, pair in reader.pairs:
            stamp = round(float(pair.depth_stamp_s), 4)
            if stamp not in by_stamp:
                raise TaskError(f"train.place_data: the frame at {stamp} s of {str(path)!r} has no row in its "
                                "places.csv")
            room.append(by_stamp[stamp]["room"])
            visit.append(by_stamp[stamp]["room_visit"])
        self.room, self.visit = np.array(room), np.array(visit)
        # rooms seen on two visits or more: the only ones with a pair
        self.frames_of = {int(r): np.flatnonzero(self.room == r) for r in np.unique(self.room)
                          if len(np.unique(self.visit[self.room == r])) > 1}
        if len(self.frames_of) < rooms:
            raise TaskError(f"train.place_data {str(path)!r} has {len(self.frames_of)} rooms seen on more than "
                            f"one visit; train.place_rooms needs {rooms}")
        self.rooms, self.seed, self.rank = rooms, seed, rank

    def indices(self, step: int) -> list[int]:
        """The frames of ``step``: the first views of its rooms, then their partners in the same order."""
        rng = np.random.default_rng([self.seed, step, self.rank, 4_242])
        keys = sorted(self.frames_of)
        first, second = [], []
        for room in rng.choice(keys, self.rooms, replace=False):
            frames = self.frames_of[int(room)]
            a = int(rng.choice(frames))
            others = frames[self.visit[frames] != self.visit[a]]
            first.append(a)
            second.append(int(rng.choice(others)))
        return first + second

    def batch(self, step: int) -> dict:
        """The collated samples of :meth:`indices`."""
        return torch.utils.data.default_collate([self.dataset[i] for i in self.indices(step)])

    def with_view_validity(self, prepared: dict, views: dict, step: int) -> dict:
        """``prepared`` (the step's batch) with, for about half of its frames (drawn by step), the depth
        validity of one of the step's views: where that view has no depth reading (a raw Kinect
        frame's registration border, shadows and holes), the frame's input depth becomes "no reading"
        and its depth is not scored. A labeled batch has depth everywhere, the walk's raw frames do
        not: with this, the batch also teaches codes of frames with holes. Rooms revisited 12-48 deg
        off were found at 0.910 / 0.692 (recall@1 / R@100%P, three walks' mean) against 0.873 / 0.616
        without it (docs/benchmarks.md, "Raw frames")."""
        if views["valid"] is None or prepared["input"].shape[1] < 4:  # no depth in the input
            return prepared
        count = len(prepared["input"])
        rng = np.random.default_rng([self.seed, step, self.rank, 4_343])
        chosen = torch.from_numpy(rng.random(count) < 0.5).to(prepared["input"].device)
        borrowed = views["valid"][torch.arange(count) % len(views["valid"]), 3:]  # (B, 1, H, W)
        keep = borrowed | ~chosen[:, None, None, None]
        valid = prepared["valid"].clone()
        valid[:, 3:] &= keep
        depth = torch.where(keep, prepared["input"][:, 3:], torch.full_like(prepared["input"][:, 3:], -1.0))
        return {**prepared, "input": torch.cat([prepared["input"][:, :3], depth, prepared["input"][:, 4:]], dim=1),
                "valid": valid}

    def forward_and_loss(self, task, model, prepared: dict, step: int, device: torch.device) -> tuple[dict, dict]:
        """One forward pass over ``prepared`` (the step's batch) and this step's views together (one
        pass, as DistributedDataParallel wants): the task's loss over the batch's outputs and those of
        the first views of as many rooms as the batch has frames, plus ``place_weight`` times the
        views' InfoNCE (``place`` among the terms). Returns the batch's outputs and the terms.

        The views are decoded and scored too because they are frames of another kind (a walk's raw
        Kinect frames, with missing depth) than a labeled batch: trained by the place term alone,
        their codes moved to a region of the code space that the decoder never learnt. On the demo's
        raw sequence the decoded RGB fell to the mean image's PSNR (14.8 against 14.6 dB); scored,
        21.0 dB (docs/benchmarks.md, "Raw frames")."""
        from ..losses import info_nce

        views = task.prepare(self.batch(step), device)
        prepared = self.with_view_validity(prepared, views, step)
        count = len(prepared["input"])
        scored = count + min(count, self.rooms)
        joined = {key: torch.cat([value, views[key]]) if isinstance(value, torch.Tensor) else value
                  for key, value in prepared.items()}
        out = task.forward(model, joined, decode=scored)  # the other views are only encoded
        terms = task.loss({key: value[:scored] for key, value in out.items()},
                          {key: value[:scored] if isinstance(value, torch.Tensor) else value
                           for key, value in joined.items()}, step)
        loss_fn = task.loss_fn
        terms["place"] = info_nce(out["mu"][count:], loss_fn.place_temperature)
        terms["loss"] = terms["loss"] + loss_fn.place_weight * terms["place"]
        return {key: value[:count] for key, value in out.items()}, terms
