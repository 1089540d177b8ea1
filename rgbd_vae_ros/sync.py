"""Keep-latest hand-over for the nodes: plain Python, no ROS, testable alone.

``LatestSlot`` hands the newest item to a worker and counts the ones it replaced, so a slow model
drops stale frames instead of queueing them. (Pairing streams by stamp is :mod:`rgbd_vae_ros.frames`.)
"""

from __future__ import annotations

import threading
from typing import Any


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
