"""Splits by room: a room is in train or in test, never both.

NYU records one room in several sessions (``kitchen_0028a``, ``kitchen_0028b``): those folders
are one room, so they are split together; the room is the folder name without its trailing
session letters.
"""

from __future__ import annotations

import re
import zlib

_SESSION = re.compile(r"^(.*\d)[a-z]+$")


def room_of(scene: str) -> str:
    """The room a scene folder records: ``kitchen_0028b`` -> ``kitchen_0028``; other names are their own room."""
    match = _SESSION.match(scene)
    return match.group(1) if match else scene


def split_scenes(scenes: list[str], test_fraction: float = 0.45) -> dict[str, list[str]]:
    """Deterministic split of scenes by room (by a hash of the room's name, not by order); at least
    one test room when there are two or more."""
    unique = sorted(set(scenes))
    rooms = sorted({room_of(s) for s in unique})
    ranked = sorted(rooms, key=lambda r: zlib.crc32(r.encode()))
    n_test = min(len(rooms) - 1, max(1, round(test_fraction * len(rooms)))) if len(rooms) > 1 else 0
    test = set(ranked[:n_test])
    return {"train": [s for s in unique if room_of(s) not in test], "test": [s for s in unique if room_of(s) in test]}
