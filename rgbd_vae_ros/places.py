"""Place recognition from latent codes (SPEC §4.6): a keyframe index for loop-closure candidates.

:class:`PlaceIndex` keeps keyframes (a new one when the code has moved more than
``keyframe_distance`` from the last keyframe) and answers, for every frame added, the best earlier
keyframe outside a recent-time window whose score passes ``min_score``. The score is the cosine
similarity of the codes after an optional per-dimension standardisation (``centre``, ``scale``;
``eval places`` measures both, see docs/benchmarks.md); ``keyframe_distance`` is a cosine distance
(1 - similarity) in the same space. Pure numpy; the ``place_recognition`` node wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GROW = 256  # keyframe rows allocated at a time


@dataclass(frozen=True)
class Match:
    """A loop-closure candidate: the frame at ``query_stamp_ns`` looks like the keyframe at ``stamp_ns``."""

    query_stamp_ns: int
    stamp_ns: int
    score: float


class PlaceIndex:
    """Keyframes of unit-length (standardised) codes with their stamps, in stamp order."""

    def __init__(self, min_score: float = 0.9, recent_window_s: float = 10.0, keyframe_distance: float = 0.02,
                 centre: np.ndarray | None = None, scale: np.ndarray | None = None):
        if not -1.0 <= min_score <= 1.0:
            raise ValueError(f"min_score is {min_score}; expected a cosine similarity in [-1, 1]")
        if not recent_window_s >= 0.0 or not np.isfinite(recent_window_s):
            raise ValueError(f"recent_window_s is {recent_window_s}; expected a finite number of seconds >= 0")
        if not 0.0 <= keyframe_distance <= 2.0:
            raise ValueError(f"keyframe_distance is {keyframe_distance}; expected a cosine distance in [0, 2]")
        self.min_score, self.keyframe_distance = float(min_score), float(keyframe_distance)
        self.recent_window_ns = int(round(recent_window_s * 1e9))
        self.centre, self.scale = None, None
        self._codes = np.zeros((0, 0), np.float32)
        self._stamps = np.zeros(0, np.int64)
        self._count, self._last_stamp_ns = 0, None
        if centre is not None or scale is not None:
            self.set_normalisation(centre, scale)

    def set_normalisation(self, centre: np.ndarray | None, scale: np.ndarray | None) -> None:
        """Score codes as ``(code - centre) / scale`` (either may be None); empties the index, whose
        keyframes were normalised the old way."""
        for name, value in (("centre", centre), ("scale", scale)):
            if value is not None and (np.ndim(value) != 1 or not np.all(np.isfinite(value))):
                raise ValueError(f"{name} must be a finite vector, one value per code dimension")
        if scale is not None and np.any(np.asarray(scale) <= 0):
            raise ValueError("scale must be positive in every dimension")
        if centre is not None and scale is not None and len(centre) != len(scale):
            raise ValueError(f"centre has {len(centre)} dimensions but scale {len(scale)}")
        self.centre = None if centre is None else np.asarray(centre, np.float64)
        self.scale = None if scale is None else np.asarray(scale, np.float64)
        self.clear()

    def clear(self) -> None:
        """Forget every keyframe (e.g. when the clock jumps back)."""
        self._codes, self._stamps = np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        self._count, self._last_stamp_ns = 0, None

    def __len__(self) -> int:
        """The number of keyframes."""
        return self._count

    @property
    def last_stamp_ns(self) -> int | None:
        """The stamp of the last code added (None when empty); a later one must not be before it."""
        return self._last_stamp_ns

    @property
    def dim(self) -> int | None:
        return self._codes.shape[1] if self._count else None

    def keyframe_stamps_ns(self) -> np.ndarray:
        return self._stamps[:self._count].copy()

    def normalise(self, code) -> np.ndarray:
        """The unit vector a code is scored as; ValueError for a code that cannot be scored."""
        code = np.asarray(code, np.float64)
        if code.ndim != 1 or code.size == 0:
            raise ValueError(f"a code is a non-empty vector, not an array of shape {code.shape}")
        for name, value in (("centre", self.centre), ("scale", self.scale)):
            if value is not None and len(value) != code.size:
                raise ValueError(f"the code has {code.size} dimensions but the normalisation's {name} {len(value)}")
        if self._count and code.size != self._codes.shape[1]:
            raise ValueError(f"the code has {code.size} dimensions but the index holds codes of {self._codes.shape[1]}")
        if not np.all(np.isfinite(code)):
            raise ValueError("the code has non-finite values")
        if self.centre is not None:
            code = code - self.centre
        if self.scale is not None:
            code = code / self.scale
        norm = float(np.linalg.norm(code))
        if not norm > 0.0 or not np.isfinite(norm):
            raise ValueError("the code has no direction (zero after normalisation); it cannot be scored")
        return (code / norm).astype(np.float32)

    def best(self, stamp_ns: int, unit: np.ndarray) -> Match | None:
        """The best keyframe older than ``stamp_ns`` - recent window for a normalised code, whatever its score."""
        eligible = int(np.searchsorted(self._stamps[:self._count], stamp_ns - self.recent_window_ns, side="right"))
        if self.recent_window_ns == 0:  # a window of 0 still never matches a frame to itself
            eligible = int(np.searchsorted(self._stamps[:self._count], stamp_ns, side="left"))
        if eligible == 0:
            return None
        scores = self._codes[:eligible] @ unit
        k = int(np.argmax(scores))
        return Match(int(stamp_ns), int(self._stamps[k]), float(np.clip(scores[k], -1.0, 1.0)))

    def add(self, stamp_ns: int, code) -> Match | None:
        """Look ``code`` up, then keep it as a keyframe if it moved more than ``keyframe_distance``
        from the last one. Returns the best earlier keyframe outside the recent window if its score
        is at least ``min_score``, else None. Stamps must not go back (ValueError; :meth:`clear` first)."""
        stamp_ns = int(stamp_ns)
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            raise ValueError(f"stamp {stamp_ns} ns is before the last one added ({self._last_stamp_ns} ns); "
                             "clear the index when the clock goes back")
        unit = self.normalise(code)
        match = self.best(stamp_ns, unit)
        self._last_stamp_ns = stamp_ns
        if self._count == 0 or 1.0 - float(self._codes[self._count - 1] @ unit) > self.keyframe_distance:
            self._append(stamp_ns, unit)
        return match if match is not None and match.score >= self.min_score else None

    def _append(self, stamp_ns: int, unit: np.ndarray) -> None:
        if self._count == 0:
            self._codes, self._stamps = np.zeros((_GROW, unit.size), np.float32), np.zeros(_GROW, np.int64)
        elif self._count == len(self._stamps):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
            self._stamps = np.concatenate([self._stamps, np.zeros_like(self._stamps)])
        self._codes[self._count], self._stamps[self._count] = unit, stamp_ns
        self._count += 1
