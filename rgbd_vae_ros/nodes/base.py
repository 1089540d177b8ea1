"""What every perception node shares (SPEC §4): declared and validated parameters, the lifecycle
(load in configure, subscribe in activate, free in cleanup, ``autostart``), a keep-latest worker
so a slow model drops stale frames, counters, throttled warnings and ``/diagnostics``.

A node is a list of *handlers* (depth, encode, decode; see :mod:`.handlers`) over one worker: the
single-purpose executables hold one, ``rgbd_pipeline`` chains all three in one process.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from rgbd_vae_ros.conversion import ImageConversionError
from rgbd_vae_ros.inference import BACKENDS, DEVICES, BackendError
from rgbd_vae_ros.stages import StageError
from rgbd_vae_ros.sync import LatestSlot

BAD_INPUT = (ImageConversionError, StageError)
WARN_EVERY_S = 2.0

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
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.lock = threading.Lock()

    def latency_summary(self) -> tuple[float, float]:
        with self.lock:
            values = np.array(self.latency_ms) if self.latency_ms else np.zeros(1)
        return float(np.median(values)), float(np.percentile(values, 95))


class PerceptionNode(LifecycleNode):
    """Base of the executables; subclasses list their handlers in ``make_handlers``."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        for key, (default, description, read_only, extra) in COMMON_PARAMETERS.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=description, read_only=read_only,
                                                                     **extra))
        self.add_on_set_parameters_callback(self._validate)
        self.counters = Counters()
        self.handlers: list = []
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._inputs: list = []  # (not rclpy's own _subscriptions, which the executor serves)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Once a second of wall time: under use_sim_time a paused or finished bag must not stop it.
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics,
                                                    clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.camera_info = None  # the latest valid CameraInfo, for nodes that subscribe to one
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
        return SetParametersResult(successful=True)

    def output_size(self) -> tuple[int, int] | None:
        width, height = self.param("output_width"), self.param("output_height")
        return (height, width) if width and height else None

    def input_qos(self) -> QoSProfile:
        reliable = self.param("reliable_input")
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)

    def output_qos(self) -> QoSProfile:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.param("queue_size"),
                          reliability=ReliabilityPolicy.RELIABLE)

    # lifecycle ----------------------------------------------------------------------------------
    def make_handlers(self) -> list:
        raise NotImplementedError

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.handlers = self.make_handlers()
        except (BackendError, StageError, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.handlers = []
            return TransitionCallbackReturn.FAILURE
        for handler in self.handlers:
            handler.create_publishers(self)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        try:
            self._inputs = self.make_subscriptions()
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
        for handler in self.handlers:
            handler.close(self)
        self.handlers = []
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self._stop.set()
        self._slot.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)
        self._worker = None

    # frames -------------------------------------------------------------------------------------
    def make_subscriptions(self) -> list:
        raise NotImplementedError

    def camera_info_subscription(self):
        from sensor_msgs.msg import CameraInfo

        return self.create_subscription(CameraInfo, "camera_info", self._keep_camera_info, self.input_qos())

    def _keep_camera_info(self, msg) -> None:
        """Keep a calibrated CameraInfo; an uncalibrated one is rejected and the previous one stays."""
        if msg.width <= 0 or msg.height <= 0:
            self.reject(f"camera_info is {msg.width}x{msg.height}; expected a calibrated size")
            return
        self.camera_info = msg

    def submit(self, frame: Any) -> None:
        """Called from subscription callbacks: hand the newest frame to the worker."""
        with self.counters.lock:
            self.counters.frames_in += 1
        self._slot.put(frame)

    def _work(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout_s=0.1)
            if frame is None:
                continue
            try:
                stamp = self.process(frame)
            except BAD_INPUT as exc:
                self.reject(str(exc))
                continue
            except Exception as exc:  # a fault of ours must not stop the node; say what happened
                self.reject(f"{type(exc).__name__}: {exc}")
                continue
            latency_ms = (self.get_clock().now().nanoseconds - _stamp_ns(stamp)) / 1e6
            with self.counters.lock:
                self.counters.frames_out += 1
                self.counters.latency_ms.append(latency_ms)

    def process(self, frame: Any):
        """Handle one frame; return the header stamp its outputs carry."""
        raise NotImplementedError

    def reject(self, reason: str) -> None:
        with self.counters.lock:
            self.counters.rejected += 1
        self.get_logger().warning(f"rejected input: {reason}", throttle_duration_sec=WARN_EVERY_S)

    # diagnostics --------------------------------------------------------------------------------
    def extra_diagnostics(self) -> dict:
        """More diagnostic values from a subclass."""
        return {}

    def _publish_diagnostics(self) -> None:
        c = self.counters
        median, p95 = c.latency_summary()
        status = DiagnosticStatus(name=f"{self.get_name()}: rgbd_vae_ros", hardware_id=self.get_fully_qualified_name())
        described = self.handlers[0].stage.describe() if self.handlers else {}
        with c.lock:
            values = {"backend": described.get("backend", ""), "device": described.get("device", ""),
                      "model": described.get("model", self.param("model")),
                      "checkpoint_sha256": described.get("checkpoint_sha256", ""),
                      "frames_in": c.frames_in, "frames_out": c.frames_out, "frames_dropped": self._slot.dropped,
                      "frames_rejected": c.rejected, "latency_median_ms": f"{median:.2f}",
                      "latency_p95_ms": f"{p95:.2f}", **self.extra_diagnostics()}
        status.level = DiagnosticStatus.OK if self.handlers else DiagnosticStatus.WARN
        status.message = "running" if self.handlers else "not configured"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        self._diagnostics.publish(DiagnosticArray(header=_header(self), status=[status]))


def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def stamp_s(msg) -> float:
    """A message's header stamp in seconds."""
    return _stamp_ns(msg.header.stamp) / 1e9


def _header(node):
    from std_msgs.msg import Header

    return Header(stamp=node.get_clock().now().to_msg())


def run_node(node_cls, args=None) -> int:
    """Spin a node until Ctrl-C or shutdown, then leave without a traceback."""
    from . import exit_status

    return exit_status(lambda: _spin(node_cls, args))


def _spin(node_cls, args) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        node = node_cls()
        executor = MultiThreadedExecutor(num_threads=2)
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
