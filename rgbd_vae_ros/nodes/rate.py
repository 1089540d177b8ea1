"""``max_rate`` (SPEC §4.4): which input frames a node takes, by their stamps. Plain Python, no ROS.

A frame is taken when its stamp reaches the next slot, one period (1 / max_rate) after the slot
of the frame taken before; the slot, not the stamp, moves on, so a camera's stamp jitter does not
lower the rate below max_rate (a tenth of a period early still counts as on time). A frame that
falls more than a period behind starts the schedule again from its own stamp, and so does a stamp
that goes back (a bag played again from the start). Skipped frames cost nothing but this check.
"""

from __future__ import annotations

import threading

# A frame this share of a period early still takes its slot: stamps of a 30 Hz camera wander by a
# millisecond or two, and a limit of 15 Hz must not turn into 10 Hz because of that.
EARLY_SHARE = 0.1


class RateLimit:
    """``take(stamp_ns)``: whether to process a frame of that stamp; ``skipped`` counts the others."""

    def __init__(self, max_rate_hz: float = 0.0):
        self._lock = threading.Lock()  # executor threads may deliver frames at once
        self.skipped = 0
        self._period_ns = 0
        self._next_ns: int | None = None
        self.set_rate(max_rate_hz)

    def set_rate(self, max_rate_hz: float) -> None:
        """A new limit in Hz (0: none), in force from the next frame."""
        with self._lock:
            self._period_ns = round(1e9 / max_rate_hz) if max_rate_hz > 0 else 0
            self._next_ns = None

    def take(self, stamp_ns: int) -> bool:
        with self._lock:
            period = self._period_ns
            if not period:
                return True
            due = self._next_ns
            if due is None or stamp_ns < due - 2 * period or stamp_ns >= due + period:
                self._next_ns = stamp_ns + period  # the first frame, a stamp gone back, or a gap
                return True
            if stamp_ns >= due - EARLY_SHARE * period:
                self._next_ns = due + period
                return True
            self.skipped += 1
            return False
