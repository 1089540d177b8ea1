"""``bag_player``: publish a rosbag2's messages with their recorded timing (SPEC §4.1, §9).

Works without the ``ros2`` command line: the bag is read with ``rosbags`` and each message is
published as recorded (already serialised) on a publisher of its recorded type and QoS.

    bag_player --ros-args -p bag:=demo_out/bag -p rate:=2.0 -p clock:=true
    rgbd-vae bag play demo_out/bag --rate 2 --clock
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from rgbd_vae_ros.bags import BagError, BagReader, Qos


# A message type as rosbag2 records it: package/msg/Type, identifiers only (no dots, no paths).
MESSAGE_TYPE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)/msg/([A-Za-z][A-Za-z0-9_]*)")


def _interface_prefixes() -> list[Path]:
    """Install prefixes whose ament resource index may list interface packages: a sourced ROS
    (``AMENT_PREFIX_PATH``), then this Python's prefix (where the PyPI wheels install theirs)."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return prefixes + [Path(sys.prefix)]


def _declares_message(package: str, name: str) -> bool:
    """True when an installed interface package ``package`` declares the message ``name``: in the
    ament index ('rosidl_interfaces'), else in a generated ``package/msg/__init__.py`` found
    without importing anything."""
    for prefix in _interface_prefixes():
        marker = prefix / "share" / "ament_index" / "resource_index" / "rosidl_interfaces" / package
        if marker.is_file():
            declared = set(marker.read_text(errors="replace").split())
            return f"msg/{name}.msg" in declared or f"msg/{name}.idl" in declared
    try:
        spec = importlib.util.find_spec(package)  # a top-level name: found, not imported
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        init = Path(folder) / "msg" / "__init__.py"
        if init.is_file() and re.search(rf"^from {package}\.msg\._\w+ import {name}\b",
                                        init.read_text(errors="replace"), re.MULTILINE):
            return True
    return False


def resolve_message_type(msgtype: str):
    """``sensor_msgs/msg/Image`` -> (the installed Python class, None), or (None, why not).

    A bag names its types, so a type is only looked up in installed ROS interface packages: the
    name must be ``package/msg/Type`` and the package must declare that message before anything is
    imported (a recorded ``this/msg/Foo`` never imports the module ``this``).
    """
    match = MESSAGE_TYPE.fullmatch(msgtype)
    if match is None:
        return None, f"{msgtype!r} is not a ROS message type name (expected package/msg/Type)"
    package, name = match.groups()
    if not _declares_message(package, name):
        return None, (f"{msgtype!r} is not a message of an installed ROS interface package "
                      f"(install the ROS package {package} if it is one)")
    try:
        cls = getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        return None, f"{msgtype!r} is declared but its Python module does not load ({exc})"
    if not (isinstance(cls, type) and type(cls).__name__ == f"Metaclass_{name}" and hasattr(cls, "_TYPE_SUPPORT")):
        return None, f"{msgtype!r} is not a generated ROS message class"
    return cls, None


def message_class(msgtype: str):
    """``sensor_msgs/msg/Image`` -> the installed Python class, or None (see :func:`resolve_message_type`)."""
    return resolve_message_type(msgtype)[0]


def qos_profile(qos: Qos) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=qos.depth,
                      reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE)


def float_range(low: float, high: float) -> dict:
    """ParameterDescriptor fields for a float in [low, high]."""
    return {"floating_point_range": [FloatingPointRange(from_value=low, to_value=high, step=0.0)]}


def declare_read_only(node: Node, table: dict) -> None:
    """Declare ``name -> (default or type, description, descriptor fields)`` as read-only parameters."""
    for name, (default, description, extra) in table.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True, **extra))


# name -> (default, description, descriptor fields)
PARAMETERS = {
    "bag": ("", "rosbag2 folder to play (MCAP or sqlite3)", {}),
    "rate": (1.0, "playback speed factor", float_range(0.01, 100.0)),
    "loop": (False, "start again at the end instead of stopping", {}),
    "start_offset": (0.0, "seconds of the bag to skip before playing", float_range(0.0, 1e9)),
    "clock": (False, "publish /clock with the bag's time (for nodes with use_sim_time)", {}),
    "clock_frequency": (40.0, "Hz at which /clock is published between messages", float_range(1.0, 1000.0)),
    "delay": (0.0, "seconds to wait before the first message (lets subscribers connect)", float_range(0.0, 3600.0)),
    "topics": (Parameter.Type.STRING_ARRAY, "topics to play (default: all)", {}),
}


class BagPlayerNode(Node):
    """Opens the bag and creates one publisher per playable topic; :meth:`play` publishes."""

    def __init__(self, **kwargs):
        super().__init__("bag_player", **kwargs)
        declare_read_only(self, PARAMETERS)
        path = self.get_parameter("bag").value
        if not path:
            raise BagError("no bag given; set the parameter bag:=PATH")
        self.reader = BagReader(path)
        wanted = self.get_parameter_or("topics", Parameter("topics", value=[])).value or []
        unknown = sorted(set(wanted) - set(self.reader.topics))
        if unknown:
            raise BagError(f"bag {path!r} has no topic {unknown[0]!r}; it has {', '.join(sorted(self.reader.topics))}")
        self.publishers_by_topic = {}
        for topic, info in self.reader.topics.items():
            if wanted and topic not in wanted:
                continue
            cls, why_not = resolve_message_type(info.msgtype)
            if cls is None:
                self.get_logger().warning(f"not playing {topic}: its type {why_not}")
                continue
            self.publishers_by_topic[topic] = self.create_publisher(cls, topic, qos_profile(info.qos))
        if not self.publishers_by_topic:
            raise BagError(f"bag {path!r} has nothing to play: its topics are {', '.join(sorted(self.reader.topics)) or 'none'}"
                           " and none of their message types is installed")
        self.clock_publisher = None
        if self.get_parameter("clock").value:
            from rosgraph_msgs.msg import Clock

            self.clock_publisher = self.create_publisher(Clock, "/clock", 10)
            self._clock_msg = Clock
        self.published = 0
        self._last_clock_ns = 0
        # How late each message went out against its recorded time / rate (the latest ones: a
        # looping player must not grow without bound).
        self.lag_s: deque[float] = deque(maxlen=10_000)
        self.on_publish = None  # optional callback(topic, recorded time ns) after each message goes out
        self.stop_event = threading.Event()

    def param(self, name: str):
        return self.get_parameter(name).value

    def _publish_clock(self, bag_ns: int) -> None:
        """/clock at ``bag_ns``; never backwards within one pass through the bag."""
        if self.clock_publisher is not None and bag_ns >= self._last_clock_ns:
            self._last_clock_ns = bag_ns
            msg = self._clock_msg()
            msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
            self.clock_publisher.publish(msg)

    def _wait_until(self, due: float, stamp_ns: int, bag_origin_ns: int, wall_origin: float, rate: float) -> bool:
        """Sleep until monotonic time ``due`` (the message at ``stamp_ns``), publishing /clock
        meanwhile; False when stopped."""
        period = 1.0 / self.param("clock_frequency")
        while True:
            remaining = due - time.monotonic()
            if remaining <= 0:
                return not self.stop_event.is_set()
            if self.stop_event.wait(min(remaining, period) if self.clock_publisher else remaining):
                return False
            if self.clock_publisher is not None:
                now_ns = bag_origin_ns + int((time.monotonic() - wall_origin) * rate * 1e9)
                self._publish_clock(min(now_ns, stamp_ns))

    def play(self) -> int:
        """Publish the bag (again and again with ``loop``) until its end or :attr:`stop_event`.

        Raises :class:`BagError` where the bag turns out damaged, after publishing what came before.
        """
        rate = self.param("rate")
        start_ns = self.reader.start_ns + int(round(self.param("start_offset") * 1e9))
        topics = list(self.publishers_by_topic)
        if self.param("delay") > 0 and self.stop_event.wait(self.param("delay")):
            return self.published
        self.get_logger().info(f"playing {self.reader.path} ({len(topics)} topics) at rate {rate:g}")
        while True:
            wall_origin = None
            self._last_clock_ns = 0
            published_before = self.published
            for topic, stamp_ns, data in self.reader.messages(topics, start_ns):
                if wall_origin is None:  # the recorded timing starts with the first message in hand: reading
                    wall_origin = time.monotonic()  # it (a chunk to decompress) is not lag of the playback
                due = wall_origin + (stamp_ns - start_ns) / 1e9 / rate
                if not self._wait_until(due, stamp_ns, start_ns, wall_origin, rate):
                    return self.published
                self._publish_clock(stamp_ns)
                self.publishers_by_topic[topic].publish(data)
                self.lag_s.append(time.monotonic() - due)
                self.published += 1
                if self.on_publish is not None:
                    self.on_publish(topic, stamp_ns)
            if self.published == published_before:
                self.get_logger().warning(f"nothing to play after start_offset {self.param('start_offset'):g} s "
                                          f"(the bag lasts {(self.reader.end_ns - self.reader.start_ns) / 1e9:.3f} s)")
                break
            if not self.param("loop") or self.stop_event.is_set():
                break
        lag_ms = np.array(self.lag_s or [0.0]) * 1e3
        self.get_logger().info(f"played {self.published} messages; publish lag behind the recorded timing "
                               f"median {np.median(lag_ms):.2f} ms, p95 {np.percentile(lag_ms, 95):.2f} ms")
        return self.published


def play(parameters: dict, args=None) -> int:
    """Run a player with these parameters until the bag ends (or Ctrl-C); the exit status."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = player = None
    failures: list[BagError] = []

    def play_to_the_end() -> None:
        try:
            node.play()
        except BagError as exc:  # a damaged bag: reported by the executable, status 1
            failures.append(exc)

    try:
        node = BagPlayerNode(parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()
                                                  if not (k == "topics" and not v)])
        player = threading.Thread(target=play_to_the_end, name="bag_player", daemon=True)
        player.start()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while player.is_alive() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        player.join()
        if failures:
            raise failures[0]
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except Exception as exc:
        if rclpy.ok() or isinstance(exc, BagError):
            raise
        return 0  # Ctrl-C shut the context down while spin_once built its wait set: the stop asked for
    finally:
        if node is not None:
            node.stop_event.set()
            if player is not None:
                player.join(timeout=5.0)
            node.reader.close()
            node.destroy_node()
        rclpy.try_shutdown()


def main(args=None) -> int:
    from . import exit_status

    return exit_status(lambda: play({}, args=args))
