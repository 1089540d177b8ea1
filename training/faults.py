"""A test hook that kills the process at a named point, so tests can interrupt a writer at a
known moment instead of after a guessed delay.

``RGBD_VAE_KILL_AT=POINT:N[:SIGNAL]`` sends SIGNAL (default KILL) to this process the N-th time
it passes ``kill_point(POINT)``. Unset (always, outside tests), a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "RGBD_VAE_KILL_AT"
_passed: dict[str, int] = {}


def kill_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    count, _, signal_name = rest.partition(":")
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] >= int(count or 1):
        os.kill(os.getpid(), getattr(signal, f"SIG{signal_name or 'KILL'}"))
