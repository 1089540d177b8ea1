"""One frame out of several streams: an image with the depth and camera_info of the same stamp.

Plain Python, no ROS, so the live nodes and ``rgbd-vae bag process`` pair messages with the same
code and therefore the same result: an image waits until every stream it pairs with has moved to
its stamp or past it, then takes from each stream the message nearest in time within ``slop_s``
(none if no message is that close). Given the same messages in the same order, the frames are the
same; the live node adds only a wall-time limit on waiting (:meth:`FrameAssembler.expire`) for a
stream that stopped.

    assembler = FrameAssembler(slop_s=0.02, streams=("depth", "camera_info"))
    for stream, msg in messages:              # stream: "image", "depth" or "camera_info"
        for frame in assembler.add(stream, msg):
            ...                               # frame.image, frame.depth, frame.camera_info
    frames_left = assembler.flush()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "FrameAssembler", "stamp_ns"]


def stamp_ns(msg: Any) -> int:
    """A message's header stamp in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@dataclass
class Frame:
    """An input message (``image``; the latent for a decoder) and what was paired with it."""

    image: Any
    depth: Any = None
    camera_info: Any = None
    received: float = 0.0  # time.monotonic() when the image arrived


class FrameAssembler:
    """Pairs each ``image`` with the nearest ``depth`` / ``camera_info`` within ``slop_s``.

    ``streams`` are the streams images pair with. With ``await_unseen`` false (the live nodes) a
    stream is waited for only once it has delivered a message, so an RGB-only camera is not held
    up; offline, where the bag says which topics exist, every stream is waited for. At most
    ``max_pending`` images wait; beyond that the oldest goes without its missing partners.
    """

    def __init__(self, slop_s: float, streams: tuple[str, ...] = (), keep: int = 30, max_pending: int = 10,
                 await_unseen: bool = True):
        if slop_s < 0:
            raise ValueError(f"slop_s is {slop_s}; expected seconds >= 0")
        self.slop_ns = round(slop_s * 1e9)
        self.streams = tuple(streams)
        self._await_unseen = await_unseen
        self._recent: dict[str, deque] = {s: deque(maxlen=keep) for s in self.streams}  # (stamp, msg)
        self._newest: dict[str, int | None] = {s: None for s in self.streams}
        self._pending: deque = deque()  # (stamp, monotonic arrival, image)
        self._max_pending = max_pending
        self._lock = threading.Lock()

    def set_slop(self, slop_s: float) -> None:
        self.slop_ns = round(slop_s * 1e9)

    def add(self, stream: str, msg: Any) -> list[Frame]:
        """Take one message; return the frames it completes, oldest first."""
        stamp = stamp_ns(msg)
        with self._lock:
            if stream == "image":
                self._pending.append((stamp, time.monotonic(), msg))
            elif stream in self._recent:
                self._recent[stream].append((stamp, msg))
                newest = self._newest[stream]
                self._newest[stream] = stamp if newest is None else max(newest, stamp)
            else:
                raise ValueError(f"stream {stream!r} is not one of image, {', '.join(self.streams)}")
            return self._release(force=False)

    def expire(self, max_wait_s: float) -> list[Frame]:
        """Frames whose image waited longer than ``max_wait_s`` (wall time), without what is missing."""
        now = time.monotonic()
        with self._lock:
            frames = []
            while self._pending and now - self._pending[0][1] > max_wait_s:
                frames.append(self._frame(self._pending.popleft()))
            return frames + self._release(force=False)

    def flush(self) -> list[Frame]:
        """Every waiting image as a frame (end of a bag)."""
        with self._lock:
            return self._release(force=True)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _decided(self, stream: str, stamp: int) -> bool:
        newest = self._newest[stream]
        if newest is None:
            return not self._await_unseen
        return newest >= stamp  # stamps only grow: nothing later can be nearer

    def _release(self, force: bool) -> list[Frame]:
        frames = []
        while self._pending:
            stamp = self._pending[0][0]
            ready = force or len(self._pending) > self._max_pending
            if not ready and not all(self._decided(s, stamp) for s in self.streams):
                break
            frames.append(self._frame(self._pending.popleft()))
        return frames

    def _frame(self, pending) -> Frame:
        stamp, received, image = pending
        partners = {}
        for stream in self.streams:
            near = [(abs(s - stamp), i, m) for i, (s, m) in enumerate(self._recent[stream]) if abs(s - stamp) <= self.slop_ns]
            partners[stream] = min(near, key=lambda t: (t[0], -t[1]))[2] if near else None
        return Frame(image, partners.get("depth"), partners.get("camera_info"), received)
