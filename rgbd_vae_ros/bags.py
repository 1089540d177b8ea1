"""rosbag2 files through ``rosbags`` (SPEC §9): writing a bag atomically, and reading one back.

Used by the converters (``rgbd-vae bag from-*``), the recorder and ``bag_player``. Nothing here
imports rclpy, so the converters run on a training machine without ROS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
    """Messages into an open rosbag2; one connection per topic, created on first use."""

    def __init__(self, writer):
        self._writer = writer
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.close_error: Exception | None = None  # why a kept partial bag could not be closed

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

    def write_raw(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """An already serialised (CDR) message, recorded at ``stamp_ns``."""
        self.add_topic(topic, msgtype)
        self._writer.write(self._connections[topic], int(stamp_ns), data)
        self.counts[topic] += 1

    def write(self, topic: str, msgtype: str, stamp_ns: int, message) -> None:
        """A ``rosbags`` message object (see :func:`typestore`)."""
        self.write_raw(topic, msgtype, stamp_ns, typestore().serialize_cdr(message, msgtype))


@contextlib.contextmanager
def write_bag(path: str | os.PathLike, storage: str = "mcap", overwrite: bool = False,
              keep_partial: bool = False) -> Iterator[BagWriter]:
    """A rosbag2 that appears at ``path`` only once the block completes.

    The bag is written in a hidden folder beside ``path`` and renamed into place at the end, so
    an interrupted or failed write leaves nothing under ``path`` (and with ``overwrite`` the old bag
    stays as it was until the new one is whole).

    With ``keep_partial`` (a recorder whose disk filled up) a bag that cannot be closed is still
    renamed into place as far as it got; :attr:`BagWriter.close_error` then says why it is incomplete.
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
        bag_writer = BagWriter(writer)
        try:
            yield bag_writer
        except BaseException:
            writer.abort()
            raise
        try:
            writer.close()
        except Exception as exc:  # OSError, or sqlite's "database or disk is full"
            if not keep_partial:
                raise
            bag_writer.close_error = exc
            with contextlib.suppress(Exception):
                writer.abort()
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
