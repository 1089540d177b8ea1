"""What every perception node shares (SPEC §4): declared and validated parameters, the lifecycle
(load in configure, subscribe in activate, free in cleanup, ``autostart``), a keep-latest worker
so a slow model drops stale frames, counters, throttled warnings and ``/diagnostics``.

A node is a *processor* (:mod:`.processors`: what the executable computes from one frame, the same
code ``rgbd-vae bag process`` runs offline) fed by a :class:`~rgbd_vae_ros.frames.FrameAssembler`
that pairs its input streams by stamp, with one worker thread publishing the outputs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from rgbd_vae_ros.conversion import ImageConversionError
from rgbd_vae_ros.frames import FrameAssembler, stamp_ns
from rgbd_vae_ros.inference import BACKENDS, DEVICES, BackendError
from rgbd_vae_ros.stages import StageError
from rgbd_vae_ros.sync import LatestSlot

from .processors import INPUT_TYPES, ON_DEMAND, Processor

BAD_INPUT = (ImageConversionError, StageError)
PAIRED = ("depth", "camera_info")  # streams an image is paired with by stamp
WARN_EVERY_S = 2.0
INPUT_QUEUE_DEPTH = 5

# name -> (default, description, read_only, extra descriptor fields)
COMMON_PARAMETERS: dict[str, tuple[Any, str, bool, dict]] = {
    "model": ("", "model file (.pt, .onnx, .engine/.plan) or a folder of exported parts", False, {}),
    "backend": ("auto", "auto | tensorrt | onnxruntime | torch", False, {}),
    "device": ("auto", "auto | cpu | cuda", False, {}),
    "fp16": (False, "half precision where the backend supports it", False, {}),
    "max_depth": (10.0, "metres; the colour scale of depth/colorized and the 16UC1 limit", False,
                  {"floating_point_range": [FloatingPointRange(from_value=0.1, to_value=100.0, step=0.0)]}),
    "depth_encoding": ("32FC1", "32FC1 (metres, NaN invalid) | 16UC1 (millimetres, 0 invalid)", False, {}),
    "sync_slop": (0.02, "seconds within which an image and a depth image count as one frame", False,
                  {"floating_point_range": [FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)]}),
    "use_depth": (True, "encode measured depth with the image (needs the depth topic)", True, {}),
    "queue_size": (5, "depth of the reliable output queues", True,
                   {"integer_range": [IntegerRange(from_value=1, to_value=100, step=1)]}),
    "reliable_input": (False, "subscribe with reliable QoS instead of sensor-data best effort", True, {}),
    "autostart": (True, "configure and activate on start", True, {}),
    "output_width": (0, "decoded image width (0: the model's)", False,
                     {"integer_range": [IntegerRange(from_value=0, to_value=8192, step=1)]}),
    "output_height": (0, "decoded image height (0: the model's)", False,
                      {"integer_range": [IntegerRange(from_value=0, to_value=8192, step=1)]}),
}
_CHOICES = {"backend": BACKENDS, "device": DEVICES, "depth_encoding": ("32FC1", "16UC1")}


class Counters:
    """Frames in / out / dropped / rejected and latency, shared by the worker and diagnostics."""

    def __init__(self, window: int = 200):
        self.frames_in = self.frames_out = self.rejected = 0
        self.latency_ms: deque[float] = deque(maxlen=window)  # receipt -> published, wall time
        self.stamp_age_ms: deque[float] = deque(maxlen=window)  # input stamp -> published, node clock
        self.lock = threading.Lock()

    def summary(self, window: deque) -> tuple[float, float]:
        """Median and 95th percentile of a window (0 while empty)."""
        with self.lock:
            values = np.array(window) if window else np.zeros(1)
        return float(np.median(values)), float(np.percentile(values, 95))


class PerceptionNode(LifecycleNode):
    """Base of the executables: a subclass names itself and its processor (:mod:`.processors`)."""

    processor_cls: type[Processor] = Processor
    # An image waits at most this long (wall time) for a depth or camera_info that has stopped.
    MAX_WAIT_S = 0.1

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        for key, (default, description, read_only, extra) in COMMON_PARAMETERS.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=description, read_only=read_only,
                                                                     **extra))
        self.add_on_set_parameters_callback(self._validate)
        self.counters = Counters()
        self.processor: Processor | None = None
        self.output_publishers: dict = {}
        self.assembler: FrameAssembler | None = None
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._inputs: list = []  # (not rclpy's own _subscriptions, which the executor serves)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Once a second of wall time: under use_sim_time a paused or finished bag must not stop it.
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics, clock=wall)
        self._expire_timer = self.create_timer(self.MAX_WAIT_S / 2, self._expire, clock=wall)
        self._autostart_timer = None
        if self.param("autostart"):
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # parameters ---------------------------------------------------------------------------------
    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _validate(self, parameters) -> SetParametersResult:
        for p in parameters:
            choices = _CHOICES.get(p.name)
            if choices and p.value not in choices:
                return SetParametersResult(successful=False,
                                           reason=f"{p.name} {p.value!r} is not one of {', '.join(choices)}")
            if p.name == "sync_slop" and self.assembler is not None:
                self.assembler.set_slop(p.value)
        return SetParametersResult(successful=True)

    def input_qos(self) -> QoSProfile:
        # A few deep: callbacks only pair messages, and a message DDS replaced before its callback
        # ran would be a frame lost without a count (the keep-latest slot counts what it drops).
        reliable = self.param("reliable_input")
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=INPUT_QUEUE_DEPTH,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)

    def output_qos(self) -> QoSProfile:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.param("queue_size"),
                          reliability=ReliabilityPolicy.RELIABLE)

    # lifecycle ----------------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.processor = self.processor_cls(self.param)
        except (BackendError, StageError, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.processor = None
            return TransitionCallbackReturn.FAILURE
        self.output_publishers = {topic: self.create_lifecycle_publisher(msg_type, topic, self.output_qos())
                                  for topic, msg_type in self.processor.outputs.items()}
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        inputs = self.processor.inputs
        self.assembler = FrameAssembler(self.param("sync_slop"), tuple(s for s in inputs if s in PAIRED),
                                        await_unseen=False)
        try:
            self._inputs = [self.create_subscription(INPUT_TYPES[stream], stream, self._receiver(stream),
                                                     self.input_qos()) for stream in inputs]
        except Exception as exc:  # rclpy would turn it into an error transition without a word
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._stop.clear()
        self._slot = LatestSlot()
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        for publisher in self.output_publishers.values():
            self.destroy_lifecycle_publisher(publisher)
        self.output_publishers = {}
        if self.processor is not None:
            self.processor.close()
        self.processor = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self.assembler = None
        self._stop.set()
        self._slot.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)
        self._worker = None

    # frames -------------------------------------------------------------------------------------
    def _receiver(self, stream: str):
        """The subscription callback of one input stream: pair it into frames for the worker."""
        image_stream = stream in ("image", "latent")

        def receive(msg) -> None:
            assembler = self.assembler
            if assembler is None:
                return
            if image_stream:
                with self.counters.lock:
                    self.counters.frames_in += 1
            for frame in assembler.add("image" if image_stream else stream, msg):
                self._slot.put(frame)

        return receive

    def _expire(self) -> None:
        assembler = self.assembler
        if assembler is not None and assembler.pending:
            for frame in assembler.expire(self.MAX_WAIT_S):
                self._slot.put(frame)

    def _wanted(self, topic: str) -> bool:
        if topic not in ON_DEMAND:
            return True
        publisher = self.output_publishers.get(topic)
        try:
            return publisher is not None and publisher.get_subscription_count() > 0
        except Exception:  # destroyed under us at shutdown: nobody is reading
            return False

    def _work(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout_s=0.1)
            if frame is None:
                continue
            processor = self.processor
            try:
                outputs = processor(frame, self._wanted)
            except BAD_INPUT as exc:
                self.reject(str(exc))
                continue
            except Exception as exc:  # a fault of ours must not stop the node; say what happened
                self.reject(f"{type(exc).__name__}: {exc}")
                continue
            try:
                for topic, msg in outputs:
                    self.output_publishers[topic].publish(msg)
            except Exception as exc:  # the context went away under us (shutdown): nothing left to serve
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f"publishing failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=WARN_EVERY_S)
                continue
            latency_ms = (time.monotonic() - frame.received) * 1e3
            age_ms = (self.get_clock().now().nanoseconds - stamp_ns(frame.image)) / 1e6
            with self.counters.lock:
                self.counters.frames_out += 1
                self.counters.latency_ms.append(latency_ms)
                self.counters.stamp_age_ms.append(age_ms)

    def reject(self, reason: str) -> None:
        with self.counters.lock:
            self.counters.rejected += 1
        self.get_logger().warning(f"rejected input: {reason}", throttle_duration_sec=WARN_EVERY_S)

    # diagnostics --------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        c = self.counters
        median, p95 = c.summary(c.latency_ms)
        age_median, _ = c.summary(c.stamp_age_ms)
        status = DiagnosticStatus(name=f"{self.get_name()}: rgbd_vae_ros", hardware_id=self.get_fully_qualified_name())
        processor = self.processor
        described = processor.describe() if processor is not None else {"model": self.param("model")}
        with c.lock:
            values = {**described,
                      "frames_in": c.frames_in, "frames_out": c.frames_out, "frames_dropped": self._slot.dropped,
                      "frames_rejected": c.rejected, "latency_median_ms": f"{median:.2f}",
                      "latency_p95_ms": f"{p95:.2f}", "stamp_age_median_ms": f"{age_median:.2f}"}
        if processor is not None:
            values.update(processor.counts)
        status.level = DiagnosticStatus.OK if processor is not None else DiagnosticStatus.WARN
        status.message = "running" if processor is not None else "not configured"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        self._diagnostics.publish(DiagnosticArray(header=_header(self), status=[status]))


def _header(node):
    from std_msgs.msg import Header

    return Header(stamp=node.get_clock().now().to_msg())


def run_node(node_cls, args=None) -> int:
    """Spin a node until Ctrl-C or shutdown, then leave without a traceback."""
    from . import exit_status

    return exit_status(lambda: _spin(node_cls, args))


def _spin(node_cls, args) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        node = node_cls()
        # One executor thread: a lifecycle transition destroys subscriptions and publishers, which
        # crashes rclpy when another executor thread is building its wait set at that moment
        # (InvalidHandle; rclpy issues 1206, 1284). The callbacks only pair messages; inference
        # runs on the node's own worker thread.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node._stop_work()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
