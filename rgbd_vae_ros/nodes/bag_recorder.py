"""``bag_recorder``: subscribe to topics and write them to a rosbag2, for users without
``ros2 bag record`` and for the demo (SPEC §9).

Messages are written as they arrive (serialised, never decoded), stamped with the receive time
like ``ros2 bag record``. A topic's type and QoS come from its publishers, so topics that appear
later are picked up too. The bag appears under its name only when recording ends (Ctrl-C or
``duration``); a crash leaves no half bag.

At most ``queue_size`` messages wait to be written: beyond that they are dropped and counted, so
a slow disk never grows the recorder's memory. A write that fails (disk full) is logged at once;
recording stops there, and the bag is still closed and kept under its name as far as it got,
with a warning that it is incomplete (the executable then exits 1).

    bag_recorder --ros-args -p bag:=outputs -p "topics:=[/rgbd_vae/latent, /rgbd_vae/depth/image]"
    rgbd-vae bag record outputs /rgbd_vae/latent /rgbd_vae/depth/image --duration 10
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

from rcl_interfaces.msg import IntegerRange

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from rgbd_vae_ros.bags import BagError, BagReader, Qos, write_bag

from .bag_player import declare_read_only, float_range, message_class, qos_profile

PARAMETERS = {
    "bag": ("", "rosbag2 folder to write (must not exist)", {}),
    "topics": (Parameter.Type.STRING_ARRAY, "topics to record", {}),
    "storage": ("mcap", "mcap | sqlite3", {}),
    "duration": (0.0, "seconds to record (0: until Ctrl-C)", float_range(0.0, 1e9)),
    "queue_size": (100, "messages waiting to be written at most; more are dropped and counted",
                   {"integer_range": [IntegerRange(from_value=1, to_value=100_000, step=1)]}),
}


_CLOSE, _ABANDON = object(), object()


class _Abandoned(Exception):
    pass


def _reason(exc: BaseException) -> str:
    """The OS's words for a failed write ('No space left on device'), else the error's own."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


class BagRecorderNode(Node):
    """Records ``topics`` into the bag ``bag`` (default: the parameters), which appears under its
    name when :meth:`finish` is called. ``types`` (topic -> msgtype) subscribes before discovery.

    The bag is written by one thread of its own (sqlite3 storage is bound to the thread that
    opened it); the subscription callbacks only queue what they receive, at most ``queue_size``
    messages (:attr:`dropped` counts the rest). :attr:`write_error` is the failed write, if any.
    """

    def __init__(self, bag: str | os.PathLike | None = None, topics: list[str] | None = None,
                 types: dict[str, str] | None = None, storage: str | None = None, overwrite: bool = False,
                 queue_size: int | None = None, **kwargs):
        super().__init__("bag_recorder", **kwargs)
        declare_read_only(self, PARAMETERS)
        if topics is None:
            topics = self.get_parameter_or("topics", Parameter("topics", value=[])).value or []
        if not topics:
            raise BagError("no topics to record; set the parameter topics:=[/a, /b]")
        self.bag = str(bag or self.get_parameter("bag").value)
        if not self.bag:
            raise BagError("no bag given; set the parameter bag:=PATH")
        self.topics = [self.resolve_topic_name(t) for t in topics]
        self.counts: dict[str, int] = {}
        self.queue_size = int(queue_size or self.get_parameter("queue_size").value)
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self.queue_high_water = 0  # the most messages that ever waited at once (<= queue_size)
        self.dropped = 0
        self._drop_lock = threading.Lock()
        self.write_error: BaseException | None = None
        self.close_error: BaseException | None = None
        self._topic_types: dict[str, tuple[str, Qos]] = {}  # subscribed topic -> (msgtype, offered QoS)
        self._unwritable: set[str] = set()  # topics whose type the bag's message definitions lack
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._finished = False
        self._writer_thread = threading.Thread(
            target=self._write_loop, args=(self.bag, storage or self.get_parameter("storage").value, overwrite),
            name="bag_recorder_writer", daemon=True)
        self._writer_thread.start()
        self._opened.wait()
        if self._error is not None:
            raise self._error
        self._recording = {}
        for topic, msgtype in (types or {}).items():
            self._subscribe(self.resolve_topic_name(topic), msgtype, Qos(depth=100))
        self._discover()
        self._timer = self.create_timer(0.2, self._discover)

    def _write_loop(self, bag: str, storage: str, overwrite: bool) -> None:
        try:
            with write_bag(bag, storage, overwrite, keep_partial=True) as writer:
                self._opened.set()
                while (item := self._queue.get()) is not _CLOSE:
                    if item is _ABANDON:
                        raise _Abandoned
                    if self.write_error is not None:
                        self._count_drop()  # queued before the failure; nothing more is written
                        continue
                    topic, msgtype, stamp_ns, data = item
                    try:
                        if not self._add_topic(writer, topic, msgtype):
                            self._count_drop()
                            continue
                        writer.write_raw(topic, msgtype, stamp_ns, data)
                    except Exception as exc:  # disk full, file too large, I/O error: stop, keep what is written
                        self._count_drop()
                        self._write_failed(exc)
                        continue
                    self.counts[topic] = self.counts.get(topic, 0) + 1
                if self.write_error is None:  # subscribed topics that got no message are in the bag too
                    try:
                        for topic, (msgtype, _) in list(self._topic_types.items()):
                            self._add_topic(writer, topic, msgtype)
                    except Exception as exc:
                        self._write_failed(exc)
            self.close_error = writer.close_error
        except _Abandoned:
            pass
        except BaseException as exc:  # reported by the constructor or by finish()
            self._error = exc
        finally:
            self._opened.set()

    def _add_topic(self, writer, topic: str, msgtype: str) -> bool:
        """The topic's connection in the bag; False (warned once) for a type the bag cannot describe."""
        if topic in self._unwritable:
            return False
        try:
            writer.add_topic(topic, msgtype, self._topic_types.get(topic, (msgtype, None))[1])
        except BagError as exc:
            self._unwritable.add(topic)
            self.get_logger().warning(f"not recording {topic}: {exc}")
            return False
        return True

    def _write_failed(self, exc: BaseException) -> None:
        self.write_error = exc
        self.get_logger().error(f"cannot write the bag {self.bag}: {_reason(exc)}; recording stopped after "
                                f"{sum(self.counts.values())} messages, later ones are dropped and the bag will be kept "
                                "as far as it reached the disk")

    def _count_drop(self) -> None:
        with self._drop_lock:
            self.dropped += 1

    def finish(self, keep: bool = True) -> None:
        """Stop recording; the bag appears under its name (``keep``) or is dropped.

        Raises :class:`BagError` saying that the bag is incomplete when a write failed: the bag is
        then kept under its name as far as it got. A second call does nothing.
        """
        if self._finished:
            return
        self._finished = True
        for topic, subscription in self._recording.items():
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._recording = {topic: None for topic in self._recording}
        while self._writer_thread.is_alive():  # the writer drains the queue, so this put gets its turn
            try:
                self._queue.put(_CLOSE if keep else _ABANDON, timeout=0.1)
                break
            except queue.Full:
                continue
        self._writer_thread.join()
        if self._error is not None and keep:
            raise BagError(f"writing {self.bag} failed: {self._error}")
        if keep and self.write_error is not None:
            raise BagError(f"{self.bag} is incomplete: a write failed ({_reason(self.write_error)}); "
                           f"{self._read_back()}")

    def _read_back(self) -> str:
        """What the kept partial bag holds, read back: a storage may lose what it had not yet
        committed (an MCAP chunk, sqlite's open transaction) when its disk fills up."""
        written, readable = sum(self.counts.values()), 0
        try:
            with BagReader(self.bag) as reader:
                for _ in reader.messages():
                    readable += 1
        except BagError:
            pass
        if readable == written:
            return f"it holds the {written} messages written before the failure"
        if self.close_error is None:
            return f"{readable} of the {written} messages written read back from it, the rest did not reach the disk"
        return (f"{readable} of the {written} messages written read back from it, and closing it failed too "
                f"({_reason(self.close_error)}; ros2 bag reindex or mcap recover may restore more)")

    def _offered_qos(self, topic: str) -> Qos:
        """Reliable / transient local only when every publisher offers it, as ``ros2 bag record`` does."""
        publishers = self.get_publishers_info_by_topic(topic)
        reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
        latched = bool(publishers) and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                                           for p in publishers)
        return Qos(reliable=reliable, transient_local=latched, depth=100)

    def _discover(self) -> None:
        missing = set(self.topics) - set(self._recording)
        if not missing:
            return
        for name, types in self.get_topic_names_and_types():
            if name in missing and types:
                self._subscribe(name, types[0], self._offered_qos(name))

    def _subscribe(self, topic: str, msgtype: str, qos: Qos) -> None:
        cls = message_class(msgtype)
        if cls is None:
            self.get_logger().warning(f"cannot record {topic}: its type {msgtype} is not installed")
            self._recording[topic] = None
            return
        self._topic_types[topic] = (msgtype, qos)
        self._recording[topic] = self.create_subscription(
            cls, topic, lambda data: self._write(topic, msgtype, data), qos_profile(qos), raw=True)
        self.get_logger().info(f"recording {topic} ({msgtype})")

    def _write(self, topic: str, msgtype: str, data: bytes) -> None:
        """Queue a received message; never blocks the executor: a full queue or a failed writer drops it."""
        if self.write_error is not None:
            self._count_drop()
            return
        try:
            self._queue.put_nowait((topic, msgtype, self.get_clock().now().nanoseconds, data))
        except queue.Full:
            self._count_drop()
            self.get_logger().warning(f"dropping messages: {self.queue_size} are waiting to be written to {self.bag} "
                                      f"(queue_size); {self.dropped} dropped so far", throttle_duration_sec=5.0)
            return
        self.queue_high_water = max(self.queue_high_water, self._queue.qsize())

    def publisher_count(self, topic: str) -> int:
        """Publishers matched on ``topic`` (0 before it is subscribed)."""
        subscription = self._recording.get(self.resolve_topic_name(topic))
        return subscription.get_publisher_count() if subscription is not None else 0


def record(parameters: dict, args=None) -> int:
    """Record until ``duration`` or Ctrl-C, then close the bag; the exit status."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        node = BagRecorderNode(parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        duration = node.get_parameter("duration").value
        end = time.monotonic() + duration if duration else float("inf")
        try:
            while rclpy.ok() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # Ctrl-C shuts the context down (rclpy's handler) while spin_once may be building its wait
            # set ("the given context is not valid"): that is the stop asked for, and the bag is kept.
            if rclpy.ok():
                raise
        try:
            node.finish()  # raises BagError (status 1) when a write failed; the bag is kept all the same
        finally:
            print(f"bag_recorder: wrote {sum(node.counts.values())} messages on {len(node.counts)} topics to "
                  f"{node.bag}, dropped {node.dropped}", file=sys.stderr)
        return 0
    except BaseException:
        if node is not None:
            node.finish(keep=False)
        raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def main(args=None) -> int:
    from . import exit_status

    return exit_status(lambda: record({}, args=args))
