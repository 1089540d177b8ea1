"""What every perception node shares (SPEC §4): declared and validated parameters, the lifecycle
(load in configure, subscribe in activate, free in cleanup, ``autostart``), a keep-latest worker
so a slow model drops stale frames, counters, throttled warnings and ``/diagnostics``.

A node is a *processor* (:mod:`.processors`: what the executable computes from one frame, the same
code ``rgbd-vae bag process`` runs offline) fed by a :class:`~rgbd_vae_ros.frames.FrameAssembler`
that pairs its input streams by stamp, with one worker thread publishing the outputs.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from rgbd_vae_ros.conversion import ImageConversionError
from rgbd_vae_ros.frames import FrameAssembler, stamp_ns
from rgbd_vae_ros.inference import BackendError
from rgbd_vae_ros.latent import LatentError
from rgbd_vae_ros.stages import StageError
from rgbd_vae_ros.sync import LatestSlot

from .diagnostics import Counters, Snapshot, level_and_message
from .parameters import COMMON_PARAMETERS, RELOADING, problem, reliable_input
from .processors import COMPRESSED_IMAGE, INPUT_TYPES, ON_DEMAND, Processor
from .rate import RateLimit

BAD_INPUT = (ImageConversionError, StageError, LatentError)
# latent/info: one message per model that a subscriber joining later still receives
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOAD_ERRORS = (BackendError, StageError, ValueError)
PAIRED = ("depth", "camera_info")  # streams an image is paired with by stamp
WARN_EVERY_S = 2.0
INPUT_QUEUE_DEPTH = 5
_LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR}


class StartError(ValueError):
    """An executable cannot start (a bad parameter or argument); one sentence, exit status 1."""


def _cuda_available() -> bool:
    from rgbd_vae_ros.inference import _cuda_available as available

    return available()


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
        reason = problem(self.values(), _cuda_available)
        if reason is not None:
            raise StartError(f"parameter {reason}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.counters = Counters()
        self.rate_limit = RateLimit(self.param("max_rate"))  # frames over max_rate: skipped, counted apart
        self.processor: Processor | None = None
        self._processor_lock = threading.Lock()  # held by the worker while it runs a frame
        self.output_publishers: dict = {}
        self.assembler: FrameAssembler | None = None
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._inputs: dict[str, Any] = {}  # stream -> subscription (not rclpy's own _subscriptions)
        self._side_inputs: dict[str, Any] = {}  # topic -> subscription (latent/info)
        self.latched_publishers: dict = {}
        self._latched_model = None  # the processor whose latched outputs went out (once per model)
        self._active = False
        self._not_active = "not configured (autostart is off: configure and activate it)"
        self._previous = Snapshot()
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Once a second of wall time: under use_sim_time a paused or finished bag must not stop it.
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._diagnostics_timer = self.create_timer(1.0, self._tick, clock=wall)
        self._expire_timer = self.create_timer(self.MAX_WAIT_S / 2, self._expire, clock=wall)
        self._autostart_timer = None
        if self.param("autostart"):
            self._not_active = "starting"
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # parameters ---------------------------------------------------------------------------------
    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def values(self) -> dict[str, Any]:
        return {name: self.param(name) for name in COMMON_PARAMETERS}

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        pending = {p.name: p.value for p in parameters if p.name in COMMON_PARAMETERS}
        values = {**self.values(), **pending}
        reason = problem(values, _cuda_available)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        if self.processor is not None and any(values[n] != self.param(n) for n in RELOADING):
            reason = self._reload(values)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        if "sync_slop" in pending and self.assembler is not None:
            self.assembler.set_slop(pending["sync_slop"])
        if "max_rate" in pending:
            self.rate_limit.set_rate(pending["max_rate"])
        return SetParametersResult(successful=True)

    def _reload(self, values: dict[str, Any]) -> str | None:
        """Load the model with the new ``values`` in place; the old one keeps running if it fails."""
        try:
            new = self.processor_cls(values.__getitem__)
        except LOAD_ERRORS as exc:
            return f"the new setting cannot load ({exc}); the running model stays"
        new.param = self.param
        # a model with an output the old one lacked (depth/mask of a mask model): its publisher, live at once
        added = {topic: self.create_lifecycle_publisher(msg_type, topic, self.output_qos())
                 for topic, msg_type in new.outputs.items() if topic not in self.output_publishers}
        if self._active:
            for publisher in added.values():
                publisher.on_activate(None)
        self.output_publishers = {**self.output_publishers, **added}
        with self._processor_lock:
            old, self.processor = self.processor, new
        old.close()
        if self._active:
            paired = tuple(s for s in new.inputs if s in PAIRED)
            if self.assembler is not None and self.assembler.streams != paired:  # e.g. a relative model: + depth
                old_assembler = self.assembler
                self.assembler = FrameAssembler(values["sync_slop"], paired, await_unseen=False)
                self.counters.add_dropped(old_assembler.pending)
            self._subscribe()  # also hears the latched latent/info again, for the new model
            self._publish_latched()  # the new model's latent/info
        self.get_logger().info(f"reloaded: {self._describe()}")
        return None

    def input_qos(self, stream: str) -> QoSProfile:
        # A few deep: callbacks only pair messages, and a message DDS replaced before its callback
        # ran would be a frame lost without a count (the keep-latest slot counts what it drops).
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=INPUT_QUEUE_DEPTH,
                          reliability=self._input_reliability(stream))

    def _input_reliability(self, stream: str) -> ReliabilityPolicy:
        """reliable_input: true / false, or auto: reliable when every publisher found is (a reliable
        subscription never hears a best-effort publisher), else best effort. With no publisher yet,
        best effort (it hears either kind) and, once subscribed, whatever it was."""
        mode = reliable_input(self.param("reliable_input"))
        if mode != "auto":
            return ReliabilityPolicy.RELIABLE if mode == "true" else ReliabilityPolicy.BEST_EFFORT
        publishers = self.get_publishers_info_by_topic(self.resolve_topic_name(self._input_topic(stream)[0]))
        if not publishers:
            current = self._inputs.get(stream)
            return current.qos_profile.reliability if current is not None else ReliabilityPolicy.BEST_EFFORT
        if all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers):
            return ReliabilityPolicy.RELIABLE
        return ReliabilityPolicy.BEST_EFFORT

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
        except LOAD_ERRORS as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.processor = None
            self._not_active = f"configure failed: {exc}"
            return TransitionCallbackReturn.FAILURE
        self.output_publishers = {topic: self.create_lifecycle_publisher(msg_type, topic, self.output_qos())
                                  for topic, msg_type in self.processor.outputs.items()}
        self.latched_publishers = {topic: self.create_lifecycle_publisher(msg_type, topic, LATCHED_QOS)
                                   for topic, msg_type in self.processor.latched.items()}
        self._latched_model = None
        self._not_active = "configured, not active"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        inputs = self.processor.inputs
        self.assembler = FrameAssembler(self.param("sync_slop"), tuple(s for s in inputs if s in PAIRED),
                                        await_unseen=False)
        try:
            self._subscribe()
        except Exception as exc:  # rclpy would turn it into an error transition without a word
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._not_active = f"activate failed: {exc}"
            return TransitionCallbackReturn.FAILURE
        self._stop.clear()
        self._slot = LatestSlot()
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
        self._worker.start()
        with self.counters.lock:
            self.counters.last_input = time.monotonic()
        self._active = True
        result = super().on_activate(state)
        if self._latched_model != self._model_key():
            self._publish_latched()
        self.get_logger().info(f"active: {self._describe()}")
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        self._not_active = "configured, not active"
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        for publisher in (*self.output_publishers.values(), *self.latched_publishers.values()):
            self.destroy_lifecycle_publisher(publisher)
        self.output_publishers, self.latched_publishers = {}, {}
        if self.processor is not None:
            self.processor.close()
        self.processor = None
        self._not_active = "not configured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_work()
        self._not_active = "shut down"
        return TransitionCallbackReturn.SUCCESS

    def _subscribe(self) -> None:
        """(Re)subscribe to the processor's input streams with the QoS each calls for now, and to
        its side inputs (transient local: the latest latched message arrives at once)."""
        for stream in list(self._inputs):
            self.destroy_subscription(self._inputs.pop(stream))
        for topic in list(self._side_inputs):
            self.destroy_subscription(self._side_inputs.pop(topic))
        for stream in self.processor.inputs:
            topic, msg_type = self._input_topic(stream)
            self._inputs[stream] = self.create_subscription(msg_type, topic, self._receiver(stream),
                                                            self.input_qos(stream))
        for topic, msg_type in self.processor.side_inputs.items():
            self._side_inputs[topic] = self.create_subscription(msg_type, topic, self._side_receiver(topic),
                                                                LATCHED_QOS)

    def _side_receiver(self, topic: str):
        def receive(msg) -> None:
            processor = self.processor
            if processor is not None:
                processor.side_input(topic, msg)

        return receive

    def _model_key(self):
        return id(self.processor)

    def _publish_latched(self) -> None:
        """The processor's latched outputs (latent/info), once per loaded model while active."""
        if self.processor is None or not self.latched_publishers:
            return
        for topic, msg in self.processor.latched_messages(_header(self)):
            self.latched_publishers[topic].publish(msg)
        self._latched_model = self._model_key()

    def _input_topic(self, stream: str) -> tuple[str, type]:
        if stream == "image" and self.param("image_transport") == "compressed":
            return COMPRESSED_IMAGE
        return stream, INPUT_TYPES[stream]

    def _follow_publishers_qos(self) -> None:
        """reliable_input auto: a publisher of other reliability appeared; subscribe again to match it."""
        if not self._active or reliable_input(self.param("reliable_input")) != "auto":
            return
        if any(sub.qos_profile.reliability != self._input_reliability(stream) for stream, sub in self._inputs.items()):
            self._subscribe()

    def _stop_work(self) -> None:
        self._active = False
        for subscription in (*self._inputs.values(), *self._side_inputs.values()):
            self.destroy_subscription(subscription)
        self._inputs, self._side_inputs = {}, {}
        assembler, self.assembler = self.assembler, None
        self._stop.set()
        self._slot.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)
        self._worker = None
        # What was waiting is dropped, and counted, so that in = out + dropped + rejected.
        left = self._slot.take(timeout_s=0)
        self.counters.add_dropped(self._slot.dropped + (left is not None) + (assembler.pending if assembler else 0))
        self._slot = LatestSlot()
        self._slot.close()

    def _describe(self) -> str:
        inputs = ", ".join(sub.topic_name for sub in (*self._inputs.values(), *self._side_inputs.values())) or "none yet"
        outputs = ", ".join(pub.topic_name for pub in (*self.output_publishers.values(),
                                                        *self.latched_publishers.values()))
        described = self.processor.describe() if self.processor is not None else {}
        models = ", ".join(v for k, v in described.items() if k.startswith("model_"))
        return (f"inputs {inputs}; outputs {outputs}; backend {described.get('backend', '?')} on "
                f"{described.get('device', '?')}; models {models}")

    # frames -------------------------------------------------------------------------------------
    def _receiver(self, stream: str):
        """The subscription callback of one input stream: pair it into frames for the worker. An
        image over ``max_rate`` goes no further (not in frames_in: counted as frames_skipped)."""
        image_stream = stream in ("image", "latent")

        def receive(msg) -> None:
            assembler = self.assembler
            if assembler is None:
                return
            if image_stream:
                # By the stamp, the camera's clock; an image stamped 0 by its arrival.
                if not self.rate_limit.take(stamp_ns(msg) or time.monotonic_ns()):
                    with self.counters.lock:
                        self.counters.last_input = time.monotonic()  # input is arriving: no quiet warning
                    return
                self.counters.received()
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
        slot = self._slot
        while not self._stop.is_set():
            frame = slot.take(timeout_s=0.1)
            if frame is None:
                continue
            with self._processor_lock:
                try:
                    outputs = self.processor(frame, self._wanted)
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
                    with self.counters.lock:
                        self.counters.dropped += 1
                    return
                self.reject(f"publishing failed: {type(exc).__name__}: {exc}")
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
            self.counters.last_reject = reason
        self.get_logger().warning(f"rejected input: {reason}", throttle_duration_sec=WARN_EVERY_S)

    # diagnostics --------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._follow_publishers_qos()
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        c = self.counters
        median, p95 = c.summary(c.latency_ms)
        age_median, _ = c.summary(c.stamp_age_ms)
        dropped = c.dropped + self._slot.dropped
        level, message, self._previous = level_and_message(c, self._previous, self._active, self._not_active,
                                                           dropped)
        processor = self.processor
        described = processor.describe() if processor is not None else {"model": str(self.param("model"))}
        with c.lock:
            values = {**described,
                      "frames_in": c.frames_in, "frames_out": c.frames_out, "frames_dropped": dropped,
                      "frames_rejected": c.rejected, "frames_skipped": self.rate_limit.skipped,
                      "latency_median_ms": f"{median:.2f}",
                      "latency_p95_ms": f"{p95:.2f}", "stamp_age_median_ms": f"{age_median:.2f}"}
        if processor is not None:
            values.update(processor.counts)
        status = DiagnosticStatus(name=f"{self.get_name()}: rgbd_vae_ros", hardware_id=self.get_fully_qualified_name(),
                                  level=_LEVELS[level], message=message,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        self._diagnostics.publish(DiagnosticArray(header=_header(self), status=[status]))


def _header(node):
    from std_msgs.msg import Header

    return Header(stamp=node.get_clock().now().to_msg())


def run_node(node_cls, args=None) -> int:
    """Spin a node until Ctrl-C or shutdown, then leave without a traceback."""
    from . import exit_status

    argv = sys.argv if args is None else args
    ours = argv[1:argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in ours or "--help" in ours:
        print(usage(node_cls, argv[0]))
        return 0
    return exit_status(lambda: _spin(node_cls, args))


def usage(node_cls, program: str) -> str:
    """--help: what the executable does, its topics and every parameter with its default."""
    import os

    lines = [f"usage: {os.path.basename(program)} [--ros-args -p NAME:=VALUE ... -r TOPIC:=NEW ...]", "",
             (node_cls.processor_cls.__doc__ or "").strip(), "",
             "subscribes: " + ", ".join([*node_cls.processor_cls.inputs, *node_cls.processor_cls.side_inputs,
                                         *_with_models(node_cls.processor_cls.model_inputs)]),
             "publishes: " + ", ".join([*node_cls.processor_cls.outputs, *node_cls.processor_cls.latched,
                                        *_with_models(node_cls.processor_cls.model_outputs)])
             + ", /diagnostics", "", "parameters:"]
    for name, (default, description, read_only, _) in COMMON_PARAMETERS.items():
        lines.append(f"  {name} (default {default!r}{', read-only' if read_only else ''}): {description}")
    return "\n".join(lines)


def _with_models(topics: dict[str, str]) -> list[str]:
    return [f"{topic} ({models})" for topic, models in topics.items()]


def _check_parameter_files(argv: list[str]) -> None:
    """A --params-file that is missing or not YAML is one sentence here (rcl would add its own log)."""
    import yaml

    for flag, path in zip(argv, argv[1:]):
        if flag != "--params-file":
            continue
        try:
            with open(path, encoding="utf-8") as file:
                yaml.safe_load(file)
        except OSError as exc:
            raise StartError(f"cannot read the parameter file {path!r}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise StartError(f"the parameter file {path!r} is not valid YAML{line}: "
                             f"{getattr(exc, 'problem', None) or exc}") from None


def _spin(node_cls, args) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    _check_parameter_files(sys.argv if args is None else args)
    try:
        rclpy.init(args=args)
    except Exception as exc:  # e.g. a --params-file that rcl cannot use
        raise StartError(f"cannot read the ROS arguments: {' '.join(str(exc).split())}") from None
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
    except Exception:
        if rclpy.ok():
            raise
        # else: Ctrl-C shut the context down while the executor built its wait set: the stop asked for
    finally:
        if node is not None:
            node._stop_work()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
