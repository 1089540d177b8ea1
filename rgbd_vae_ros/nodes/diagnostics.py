"""What a perception node reports on ``/diagnostics`` (SPEC §4): counters and the status level.

Counters are cumulative over the node's life (never reset by a transition), so that frames in =
out + dropped + rejected + pending. The level is judged on the window since the last report:
ERROR when not active (with the reason, e.g. a failed configure), WARN when active with no input
for ``QUIET_S``, when over half the frames of the window were dropped, or when inputs were
rejected in it; OK otherwise.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

QUIET_S = 5.0


class Counters:
    """Frames in / out / dropped / rejected and latencies, shared by callbacks, worker and reports."""

    def __init__(self, window: int = 200):
        self.frames_in = self.frames_out = self.dropped = self.rejected = 0
        self.latency_ms: deque[float] = deque(maxlen=window)  # receipt -> published, wall time
        self.stamp_age_ms: deque[float] = deque(maxlen=window)  # input stamp -> published, node clock
        self.last_input = time.monotonic()
        self.last_reject = ""
        self.lock = threading.Lock()

    def received(self) -> None:
        with self.lock:
            self.frames_in += 1
            self.last_input = time.monotonic()

    def add_dropped(self, count: int) -> None:
        if count:
            with self.lock:
                self.dropped += count

    def summary(self, window: deque) -> tuple[float, float]:
        """Median and 95th percentile of a window (0 while empty)."""
        with self.lock:
            values = np.array(window) if window else np.zeros(1)
        return float(np.median(values)), float(np.percentile(values, 95))


@dataclass
class Snapshot:
    frames_in: int = 0
    dropped: int = 0
    rejected: int = 0


def level_and_message(counters: Counters, previous: Snapshot, active: bool, not_active_reason: str,
                      dropped_now: int) -> tuple[str, str, Snapshot]:
    """('OK' | 'WARN' | 'ERROR', message, snapshot for the next window)."""
    with counters.lock:
        now = Snapshot(counters.frames_in, dropped_now, counters.rejected)
        quiet_s = time.monotonic() - counters.last_input
        last_reject = counters.last_reject
    if not active:
        return "ERROR", not_active_reason, now
    arrived = now.frames_in - previous.frames_in
    dropped = now.dropped - previous.dropped
    rejected = now.rejected - previous.rejected
    if rejected > 0:
        return "WARN", f"{rejected} input(s) rejected in the last report period; the latest: {last_reject}", now
    if arrived > 0 and dropped > arrived / 2:
        return "WARN", (f"{dropped} of {arrived} frames dropped in the last report period: inference is slower "
                        "than the input"), now
    if quiet_s > QUIET_S:
        return "WARN", f"no input for {quiet_s:.0f} s", now
    return "OK", "running", now
