"""rosbag2 files through ``rosbags`` (SPEC §9): writing a bag atomically, and reading one back.

Used by the converters (``rgbd-vae bag from-*``), the recorder and ``bag_player``. Nothing here
imports rclpy, so the converters run on a training machine without ROS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .files import staging_dir

# The topics of a converted NYU sequence (SPEC §9).
RGB_TOPIC = "/camera/rgb/image_raw"
DEPTH_TOPIC = "/camera/depth/image_raw"
RGB_INFO_TOPIC = "/camera/rgb/camera_info"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"
TF_STATIC_TOPIC = "/tf_static"
STORAGES = ("mcap", "sqlite3")


class BagError(Exception):
    """A bag that cannot be read or written, in one sentence."""


def _import_rosbags():
    try:
        import rosbags.rosbag2 as rosbag2
    except ImportError:
        raise BagError("reading and writing bags needs the rosbags package; install it with "
                       "pip install 'rosbags>=0.10' (or the package's [bag] extra)") from None
    return rosbag2


@lru_cache(maxsize=1)
def typestore():
    """Message definitions of the sourced ROS 2 distribution (``ROS_DISTRO``), else Kilted's."""
    _import_rosbags()
    from rosbags.typesys import Stores, get_typestore

    distro = os.environ.get("ROS_DISTRO", "").upper()
    store = Stores.__members__.get(f"ROS2_{distro}", Stores.ROS2_KILTED)
    return get_typestore(store)


@dataclass(frozen=True)
class Qos:
    """The part of a topic's recorded QoS the player re-offers."""

    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


LATCHED = Qos(reliable=True, transient_local=True, depth=1)


def _rosbags_qos(qos: Qos):
    from rosbags.interfaces import Qos as RQos
    from rosbags.interfaces import QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    never = QosTime(sec=0, nsec=0)
    return RQos(history=QosHistory.KEEP_LAST, depth=qos.depth,
                reliability=QosReliability.RELIABLE if qos.reliable else QosReliability.BEST_EFFORT,
                durability=QosDurability.TRANSIENT_LOCAL if qos.transient_local else QosDurability.VOLATILE,
                deadline=never, lifespan=never, liveliness=QosLiveliness.AUTOMATIC,
                liveliness_lease_duration=never, avoid_ros_namespace_conventions=False)


def _from_rosbags_qos(profiles) -> Qos:
    if not profiles:
        return Qos()
    from rosbags.interfaces import QosDurability, QosReliability

    first = profiles[0]
    return Qos(reliable=first.reliability != QosReliability.BEST_EFFORT,
               transient_local=first.durability == QosDurability.TRANSIENT_LOCAL,
               depth=max(1, int(first.depth or 10)))


class BagWriter:
    """Messages into an open rosbag2; one connection per topic, created on first use.

    With ``keep_partial`` it also remembers the last state that reached the disk whole (after each
    MCAP chunk; after each sqlite3 commit, about once a second or MiB), so that a bag whose disk
    fills up can be closed there (:func:`write_bag`).
    """

    def __init__(self, writer, keep_partial: bool = False):
        self._writer = writer
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.failed: Exception | None = None  # the first write that failed
        self.close_error: Exception | None = None  # why a kept partial bag could not be closed
        self._keep_partial = keep_partial
        self._whole: dict | None = None
        self._uncommitted_bytes = 0
        if keep_partial:
            self._remember_whole(force=True)

    def add_topic(self, topic: str, msgtype: str, qos: Qos | None = None) -> None:
        if topic in self._connections:
            return
        store = typestore()
        if msgtype not in store.fielddefs:
            raise BagError(f"topic {topic!r} has type {msgtype!r}, which the ROS 2 message definitions here do not include")
        profiles = [_rosbags_qos(qos)] if qos is not None else []
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=store,
                                                               offered_qos_profiles=profiles)
        self.counts[topic] = 0
        if self._keep_partial:
            try:
                self._remember_whole(force=True)
            except Exception as exc:
                self.failed = self.failed or exc
                raise

    def write_raw(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """An already serialised (CDR) message, recorded at ``stamp_ns``."""
        self.add_topic(topic, msgtype)
        try:
            self._writer.write(self._connections[topic], int(stamp_ns), data)
            self.counts[topic] += 1
            if self._keep_partial:
                self._uncommitted_bytes += len(data)
                self._remember_whole()
        except Exception as exc:
            self.failed = self.failed or exc
            raise

    def write(self, topic: str, msgtype: str, stamp_ns: int, message) -> None:
        """A ``rosbags`` message object (see :func:`typestore`)."""
        self.write_raw(topic, msgtype, stamp_ns, typestore().serialize_cdr(message, msgtype))

    def _remember_whole(self, force: bool = False) -> None:
        """Note the state that reached the disk whole. rosbags' MCAP writer keeps a chunk in memory
        and writes it at once: after each, the file's end. Its sqlite3 writer holds one open
        transaction: commit it now and then."""
        storage = getattr(self._writer, "storage", None)
        extra: dict = {}
        if hasattr(storage, "chunks") and hasattr(storage, "bio"):  # MCAP
            if not force and self._whole is not None and self._whole["chunks"] == len(storage.chunks):
                return
            storage.bio.flush()
            extra = {"chunks": len(storage.chunks), "end": storage.bio.tell(), "stats": dict(storage.channel_stats),
                     "storage_times": (storage.message_start_time, storage.message_end_time)}
        elif hasattr(storage, "conn"):  # sqlite3
            if (not force and self._whole is not None and self._uncommitted_bytes < 1 << 20
                    and time.monotonic() - self._whole["at"] < 1.0):
                return
            storage.conn.commit()
            self._uncommitted_bytes = 0
        else:
            return
        self._whole = {"at": time.monotonic(), "counts": dict(self.counts), "writer_counts": dict(self._writer.counts),
                       "times": (self._writer.min_timestamp, self._writer.max_timestamp), **extra}

    def _back_to_whole(self) -> bool:
        """Drop what did not reach the disk whole (an MCAP chunk cut off, sqlite's open transaction)
        so that the bag can be closed there; False when that is not possible."""
        whole, storage = self._whole, getattr(self._writer, "storage", None)
        if whole is None or storage is None:
            return False
        if "chunks" in whole:
            from collections import defaultdict
            from io import BytesIO

            with contextlib.suppress(Exception):
                storage.bio.close()  # its buffer lies beyond the cut
            os.truncate(storage.path, whole["end"])  # which frees the room the index needs
            storage.bio = storage.path.open("r+b")
            storage.bio.seek(whole["end"])
            del storage.chunks[whole["chunks"]:]
            storage.chunk = type(storage.chunk)(2**63 - 1, 0, BytesIO(), defaultdict(list))
            storage.channel_stats = {cid: whole["stats"].get(cid, 0) for cid in storage.channel_stats}
            storage.message_start_time, storage.message_end_time = whole["storage_times"]
        else:
            storage.conn.rollback()
        self._writer.counts = {cid: whole["writer_counts"].get(cid, 0) for cid in self._writer.counts}
        self._writer.min_timestamp, self._writer.max_timestamp = whole["times"]
        self.counts = {topic: whole["counts"].get(topic, 0) for topic in self.counts}
        return True

    def _close_kept(self, error: Exception | None) -> None:
        """Close a bag kept after a failure at its last whole state; :attr:`close_error` when even that fails."""
        try:
            if not self._back_to_whole():
                raise error or BagError("the bag has no whole state to close at")
            self._writer.close()
        except Exception as exc:
            self.close_error = exc
            with contextlib.suppress(Exception):
                self._writer.abort()


@contextlib.contextmanager
def write_bag(path: str | os.PathLike, storage: str = "mcap", overwrite: bool = False,
              keep_partial: bool = False) -> Iterator[BagWriter]:
    """A rosbag2 that appears at ``path`` only once the block completes.

    The bag is written in a hidden folder beside ``path`` and renamed into place at the end, so
    an interrupted or failed write leaves nothing under ``path`` (and with ``overwrite`` the old bag
    stays as it was until the new one is whole).

    With ``keep_partial`` (a recorder whose disk filled up) a bag that cannot be closed is still
    renamed into place as far as it got: closed at the last state that reached the disk whole (see
    :class:`BagWriter`), or else as it is, with :attr:`BagWriter.close_error` saying why.
    """
    rosbag2 = _import_rosbags()
    if storage not in STORAGES:
        raise BagError(f"storage {storage!r} is not one of {', '.join(STORAGES)}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise BagError(f"{path} already exists; remove it or choose another output name")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(path)  # named for this process: a later run removes it if this one is killed
    try:
        plugin = rosbag2.StoragePlugin.MCAP if storage == "mcap" else rosbag2.StoragePlugin.SQLITE3
        writer = rosbag2.Writer(staging / path.name, version=9, storage_plugin=plugin)
        writer.open()
        bag_writer = BagWriter(writer, keep_partial)
        try:
            yield bag_writer
        except BaseException:
            writer.abort()
            raise
        if keep_partial and bag_writer.failed is not None:
            bag_writer._close_kept(bag_writer.failed)
        else:
            try:
                writer.close()
            except Exception as exc:  # OSError, or sqlite's "database or disk is full"
                if not keep_partial:
                    raise
                bag_writer._close_kept(exc)
        if path.exists():  # overwrite: the old bag goes only once the new one is whole
            path.rename(staging / ".replaced")
        (staging / path.name).rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class TopicInfo:
    topic: str
    msgtype: str
    count: int
    qos: Qos = field(default_factory=Qos)


class BagReader:
    """A rosbag2 (MCAP or sqlite3) opened for reading: its topics and its messages in time order."""

    def __init__(self, path: str | os.PathLike):
        rosbag2 = _import_rosbags()
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {str(self.path)!r} does not exist")
        if not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{str(self.path)!r} is not a rosbag2 folder (it has no metadata.yaml)")
        try:
            self._reader = rosbag2.Reader(self.path)
            self._reader.open()
        except Exception as exc:
            raise BagError(f"cannot read bag {str(self.path)!r}: {exc}") from None
        self.topics = {c.topic: TopicInfo(c.topic, c.msgtype, c.msgcount,
                                          _from_rosbags_qos(getattr(c.ext, "offered_qos_profiles", None)))
                       for c in self._reader.connections}

    @property
    def start_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_ns(self) -> int:
        return self._reader.end_time

    def messages(self, topics: list[str] | None = None, start_ns: int | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(topic, recorded time ns, CDR bytes) in recorded order."""
        connections = [c for c in self._reader.connections if topics is None or c.topic in topics]
        if not connections:
            return
        read: dict[int, int] = dict.fromkeys((c.id for c in connections), 0)
        messages = self._reader.messages(connections=connections, start=start_ns)
        while True:
            try:
                item = next(messages, None)
            except Exception as exc:  # any storage's own error (rosbags, sqlite, struct) on damaged bytes
                raise self._damaged(read, f"{type(exc).__name__}: {exc}") from None
            if item is None:
                break
            connection, stamp_ns, data = item
            read[connection.id] += 1
            yield connection.topic, stamp_ns, bytes(data)
        if start_ns is None or start_ns <= self.start_ns:
            # A damaged MCAP chunk can end the reader early without an error: the index says more.
            for connection in connections:
                if read[connection.id] < connection.msgcount:
                    raise self._damaged(read, f"{connection.topic} ended after {read[connection.id]} of the "
                                              f"{connection.msgcount} messages its index lists")

    def _damaged(self, read: dict[int, int], problem: str) -> BagError:
        return BagError(f"bag {str(self.path)!r} is damaged: reading stopped after {sum(read.values())} "
                        f"messages ({problem})")

    def decoded(self, topic: str) -> Iterator[tuple[int, object]]:
        """(recorded time ns, ``rosbags`` message) of one topic."""
        info = self.topics.get(topic)
        if info is None:
            raise BagError(f"bag {str(self.path)!r} has no topic {topic!r}; it has {', '.join(sorted(self.topics))}")
        store = typestore()
        for _, stamp_ns, data in self.messages([topic]):
            yield stamp_ns, store.deserialize_cdr(data, info.msgtype)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
