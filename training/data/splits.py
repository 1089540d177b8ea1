"""Splits by scene: a scene is in train or in test, never both."""

from __future__ import annotations

import zlib


def split_scenes(scenes: list[str], test_fraction: float = 0.45) -> dict[str, list[str]]:
    """Deterministic scene split (by a hash of the name, not by order); at least one test scene when >1."""
    unique = sorted(set(scenes))
    ranked = sorted(unique, key=lambda s: zlib.crc32(s.encode()))
    n_test = min(len(unique) - 1, max(1, round(test_fraction * len(unique)))) if len(unique) > 1 else 0
    test = set(ranked[:n_test])
    return {"train": [s for s in unique if s not in test], "test": [s for s in unique if s in test]}
