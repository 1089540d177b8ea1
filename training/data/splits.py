"""Splits by room: a room is in train or in test, never both.

NYU records one room in several sessions (``kitchen_0028a``, ``kitchen_0028b``): those folders
are one room, so they are split together; the room is the folder name without its trailing
session letters.
"""

from __future__ import annotations

import math
import re
import zlib

_SESSION = re.compile(r"^(.*\d)[a-z]+$")


def room_of(scene: str) -> str:
    """The room a scene folder records: ``kitchen_0028b`` -> ``kitchen_0028``; other names are their own room."""
    match = _SESSION.match(scene)
    return match.group(1) if match else scene


def _ranked(names, salt: str = "") -> list[str]:
    """``names`` in the order of a hash of each (after ``salt``): a fixed order that does not follow the names'."""
    return sorted(sorted(set(names)), key=lambda name: zlib.crc32(f"{salt}{name}".encode()))


def split_scenes(scenes: list[str], test_fraction: float = 0.45) -> dict[str, list[str]]:
    """Deterministic split of scenes by room (by a hash of the room's name, not by order); at least
    one test room when there are two or more."""
    unique = sorted(set(scenes))
    ranked = _ranked(room_of(s) for s in unique)
    n_test = min(len(ranked) - 1, max(1, round(test_fraction * len(ranked)))) if len(ranked) > 1 else 0
    test = set(ranked[:n_test])
    return {"train": [s for s in unique if room_of(s) not in test], "test": [s for s in unique if room_of(s) in test]}


def hold_out(frame_scenes: list[str] | None, count: int, share: float,
             frame_keys: list[str] | None = None) -> tuple[list[int], list[int]]:
    """Frame indices ``(kept, held)`` of ``count`` training frames, ``held`` being about ``share`` (between
    0 and 1) of them kept back to validate on (choosing ``best.pt``), so that the test split never
    chooses a model.

    Frames of a reader that knows their scenes (``frame_scenes``) are held back by room, as the test
    split is made: ``share`` of the rooms, rounded half up, chosen by a hash of the room's name that
    differs from the test split's. Frames with no scenes (MNIST, an image folder) are held back one by
    one, by a hash of their ``frame_keys`` (an image folder's file paths: adding an image moves no other
    one across), else of their index. ``held`` is empty where that share rounds to nothing, or where the
    frames are of a single room (a held-back part of one recording would be nearly the frames trained on)."""
    for what, names in (("scene names", frame_scenes), ("frame keys", frame_keys)):
        if names is not None and len(names) != count:
            raise ValueError(f"{len(names)} {what} for {count} frames")
    groups = ([room_of(s) for s in frame_scenes] if frame_scenes else list(frame_keys) if frame_keys
              else [str(i) for i in range(count)])
    ranked = _ranked(groups, salt="validation/")
    n_held = min(len(ranked) - 1, math.floor(share * len(ranked) + 0.5))
    held_groups = set(ranked[:n_held]) if n_held > 0 else set()
    kept = [i for i, g in enumerate(groups) if g not in held_groups]
    held = [i for i, g in enumerate(groups) if g in held_groups]
    return kept, held
