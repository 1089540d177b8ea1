"""A walk that revisits rooms with view changes of known angle, for place recognition (``eval places``).

The camera visits every room once (``frames_per_visit`` frames at 30 Hz), then comes back to each
room once per view-change bin, its path turned about the vertical by an angle drawn in that bin
(either sign) and moved sideways by up to :data:`MAX_SHIFT_M`. Visits are :data:`VISIT_SPACING_S`
apart on one clock (the camera "leaves" between them). Everything goes into one NYU raw scene folder,
``synth_walk``, with ``places.csv`` beside the frames: per depth frame its stamp, room, visit, the
view offset it was rendered with, its pose and its view change, the smallest angle between its
optical axis and that of any frame of an earlier visit to the same room (empty on a first visit).
The rooms are those of ``synth --layout nyu-raw`` with the same seed; the same arguments give the
same bytes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rgbd_vae_ros.files import atomic_dir, atomic_write_text

from .generate import FIRST_STAMP_S, SceneRenderer, _begin, _mark_complete, _write_raw_frame, render_frames
from .parallel import in_order
from .scene import make_scene

# A revisit per bin [lo, hi) of yaw offset (degrees); eval places reports by the same bins of view change.
VIEW_CHANGE_BINS_DEG = ((0.0, 12.0), (12.0, 48.0), (48.0, 90.0))
MAX_SHIFT_M = 0.3  # the path stays clear of furniture by 0.5 m (scene.make_scene), of walls by more
VISIT_SPACING_S = 20.0  # visit v starts VISIT_SPACING_S * v after the first
WALK_FOLDER = "synth_walk"
PLACES_NAME = "places.csv"
PLACES_COLUMNS = ("depth_stamp_s", "rgb_stamp_s", "room", "visit", "room_visit", "yaw_offset_deg", "shift_m",
                  "view_change_deg", "x_m", "y_m", "z_m", "yaw_deg", "pitch_deg")


def plan_visits(rooms: int, seed: int, bins=VIEW_CHANGE_BINS_DEG) -> list[dict]:
    """The walk's visits in order: each room once with no offset, then passes over the rooms (in a
    seeded order) that revisit each once per bin, the bins shuffled per room."""
    rng = np.random.default_rng([seed, 7_771])
    visits = [{"room": r, "yaw_offset_deg": 0.0, "shift_m": np.zeros(3)} for r in range(rooms)]
    bin_order = [rng.permutation(len(bins)) for _ in range(rooms)]
    for revisit in range(len(bins)):
        for room in rng.permutation(rooms):
            lo, hi = bins[bin_order[room][revisit]]
            yaw = float(rng.uniform(lo, hi)) * float(rng.choice([-1.0, 1.0]))
            direction = float(rng.uniform(0, 2 * np.pi))
            shift = float(rng.uniform(0, MAX_SHIFT_M)) * np.array([np.cos(direction), np.sin(direction), 0.0])
            visits.append({"room": int(room), "yaw_offset_deg": yaw, "shift_m": shift})
    return visits


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between unit vectors ``a`` (3,) and each row of ``b`` (N, 3)."""
    return np.degrees(np.arccos(np.clip(b @ a, -1.0, 1.0)))


def write_nyu_raw_revisit(out: str | os.PathLike, rooms: int, frames_per_visit: int, seed: int = 0,
                          width: int = 640, height: int = 480, progress=None) -> Path:
    """``out/synth_walk``: NYU raw frames of the revisit walk and its ``places.csv`` (staged whole);
    ``synth.json`` (layout ``nyu-raw-revisit``) last."""
    out = Path(out)
    _begin(out)
    folder = out / WALK_FOLDER
    axes_seen: dict[int, list[np.ndarray]] = {r: [] for r in range(rooms)}  # optical axes of earlier visits
    rows, room_visits = [], {r: 0 for r in range(rooms)}
    visits = plan_visits(rooms, seed)
    jobs = [(seed, v, visit, frames_per_visit, width, height) for v, visit in enumerate(visits)]
    with atomic_dir(folder) as staging, \
            in_order(visit_frames, jobs, frames_per_job=frames_per_visit) as results:
        for v, (visit, rendered) in enumerate(zip(visits, results)):
            room = visit["room"]
            earlier = np.array(axes_seen[room]) if axes_seen[room] else None
            axes = []
            for frame in rendered:
                _write_raw_frame(staging, frame, progress=progress)
                rotation, position = frame.pose_rgb[:3, :3], frame.pose_rgb[:3, 3]
                axis = rotation[:, 2]  # optical axis (z forward) in the world
                axes.append(axis)
                change = "" if earlier is None else f"{float(_angle_deg(axis, earlier).min()):.3f}"
                rows.append([f"{frame.depth_stamp_s:.6f}", f"{frame.rgb_stamp_s:.6f}", room, v, room_visits[room],
                             f"{visit['yaw_offset_deg']:.3f}", f"{float(np.linalg.norm(visit['shift_m'])):.4f}", change,
                             *(f"{c:.4f}" for c in position),
                             f"{np.degrees(np.arctan2(axis[1], axis[0])):.3f}",
                             f"{np.degrees(np.arcsin(np.clip(axis[2], -1, 1))):.3f}"])
            axes_seen[room].extend(axes)
            room_visits[room] += 1
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(PLACES_COLUMNS)
        writer.writerows(rows)
        atomic_write_text(staging / PLACES_NAME, text.getvalue())
    _mark_complete(out, "nyu-raw-revisit", rooms=rooms, frames_per_visit=frames_per_visit, seed=seed, width=width,
                   height=height)
    return folder


def visit_frames(job: tuple) -> Iterator:
    """The frames of visit ``v`` of the walk, for ``job = (seed, v, visit, frames_per_visit, width,
    height)`` (``visit``: its row of :func:`plan_visits`): a job of :func:`.parallel.in_order`."""
    seed, v, visit, frames_per_visit, width, height = job
    scene = make_scene(np.random.default_rng([seed, visit["room"]]))  # as generate_scene draws it
    rng = np.random.default_rng([seed, visit["room"], v, 1])  # this visit's sensor noise and clock jitter
    renderer = SceneRenderer(scene, width, height, noise_seed=int(rng.integers(2**31)),
                             yaw_offset_rad=np.radians(visit["yaw_offset_deg"]), shift_m=visit["shift_m"])
    return render_frames(renderer, rng, frames_per_visit, FIRST_STAMP_S + VISIT_SPACING_S * v, truth=False)


def read_places(path: str | os.PathLike) -> list[dict]:
    """The rows of a walk's ``places.csv`` (``path``: the file, the walk folder or the folder above it),
    typed: stamps and angles float, room and visits int, view change None on a first visit."""
    path = Path(path)
    for candidate in (path, path / PLACES_NAME, path / WALK_FOLDER / PLACES_NAME):
        if candidate.is_file():
            break
    else:
        raise FileNotFoundError(f"{str(path)!r} holds no {PLACES_NAME}; write a revisit walk with "
                                "'rgbd-vae synth --walk revisit'")
    with open(candidate, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != PLACES_COLUMNS:
            raise ValueError(f"{str(candidate)!r} has columns {reader.fieldnames}; expected {list(PLACES_COLUMNS)}")
        rows = []
        for row in reader:
            typed = {key: float(value) for key, value in row.items() if key not in ("room", "visit", "room_visit",
                                                                                  "view_change_deg")}
            typed.update(room=int(row["room"]), visit=int(row["visit"]), room_visit=int(row["room_visit"]),
                         view_change_deg=float(row["view_change_deg"]) if row["view_change_deg"] else None)
            rows.append(typed)
    return rows
