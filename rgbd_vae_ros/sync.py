"""Frame matching and keep-latest hand-over for the nodes: plain Python, no ROS, testable alone.

``StampMatcher`` pairs colour and depth frames whose stamps lie within ``slop_s`` (approximate-time
matching, as message_filters does, which is not on PyPI). ``LatestSlot`` hands the newest item to a
worker and counts the ones it replaced, so a slow model drops stale frames instead of queueing them.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class StampMatcher:
    """Pairs items from two streams by stamp (seconds) within ``slop_s``.

    Each stream keeps its last ``queue_size`` items. A new item is paired with the closest item of
    the other stream within the slop; the pair and everything older on both sides leave the queues
    (older items can no longer be the newest pair). Items pushed out unpaired are counted.
    """

    def __init__(self, slop_s: float, queue_size: int = 10):
        if slop_s < 0 or queue_size < 1:
            raise ValueError(f"slop_s must be >= 0 and queue_size >= 1, got {slop_s} and {queue_size}")
        self.slop_s = slop_s
        self._queues: tuple[deque, deque] = (deque(), deque())
        self._queue_size = queue_size
        self.unmatched = 0
        self._lock = threading.Lock()

    def add(self, stream: int, stamp_s: float, item: Any) -> tuple[Any, Any] | None:
        """Add to stream 0 (e.g. colour) or 1 (depth); returns (item0, item1) when a pair forms."""
        with self._lock:
            own, other = self._queues[stream], self._queues[1 - stream]
            best = min(range(len(other)), key=lambda i: abs(other[i][0] - stamp_s), default=None)
            if best is not None and abs(other[best][0] - stamp_s) <= self.slop_s:
                partner = other[best][1]
                self.unmatched += best + len(own)  # older items of both streams never pair now
                for _ in range(best + 1):
                    other.popleft()
                own.clear()
                return (item, partner) if stream == 0 else (partner, item)
            own.append((stamp_s, item))
            if len(own) > self._queue_size:
                own.popleft()
                self.unmatched += 1
            return None


class LatestSlot:
    """One-item mailbox: ``put`` replaces an unclaimed item (counted in ``dropped``); ``take`` waits."""

    def __init__(self):
        self._item: Any = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._full:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify()

    def take(self, timeout_s: float | None = None) -> Any:
        """The newest item, or None on timeout or after ``close``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout_s):
                return None
            if self._closed and not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
