"""An in-process harness: the node under test and a probe node spun by one executor thread.

A single-threaded executor, as the nodes' ``main`` spins them: a node that subscribes again
(``reliable_input: auto`` follows a new publisher's reliability from its diagnostics timer) destroys
a subscription inside a callback, and in rclpy's multi-threaded executor that races the thread
building the next wait set (``InvalidHandle: cannot use Destroyable because destruction was
requested`` ends the spin thread, and the test waits for messages no one delivers)."""

import shutil
import threading
import time

import pytest


class Harness:
    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.context = context
        self.executor = SingleThreadedExecutor(context=context)
        self.probe = Node("probe", context=context)
        self.executor.add_node(self.probe)
        self.received: dict[str, list] = {}
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def add(self, node):
        self.executor.add_node(node)
        return node

    def publisher(self, msg_type, topic, reliable=True):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
        return self.probe.create_publisher(msg_type, topic, qos)

    def listen(self, msg_type, topic):
        self.received[topic] = []
        self.probe.create_subscription(msg_type, topic, self.received[topic].append, 10)
        return self.received[topic]

    # Generous deadlines: discovery and delivery on a loaded 2-core machine can take seconds.
    def wait_for(self, condition, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return False

    def send(self, publisher, msg, condition, timeout_s=30.0, resend_s=2.0):
        """Publish ``msg`` once the publisher has matched a subscriber, until ``condition()``.

        A best-effort subscription may drop the message, and discovery can match one side
        before the other, so it is published again after ``resend_s`` without the condition;
        ``resend_s=None`` publishes it once (reliable QoS on both sides delivers it once matched,
        for tests where a duplicate would be counted).
        """
        deadline = time.monotonic() + timeout_s
        if not self.wait_for(lambda: publisher.get_subscription_count() > 0, timeout_s):
            return False
        while time.monotonic() < deadline:
            publisher.publish(msg)
            wait = deadline - time.monotonic() if resend_s is None else min(resend_s, deadline - time.monotonic())
            if self.wait_for(condition, max(wait, 0.0)):
                return True
        return condition()

    def close(self):
        self.executor.shutdown(timeout_sec=2.0)


@pytest.fixture
def harness(rclpy_context):
    h = Harness(rclpy_context)
    yield h
    h.close()


@pytest.fixture(scope="session")
def pipeline_models(tmp_path_factory, exported):
    """One folder with depth.onnx (unet_depth) and encoder.onnx / decoder.onnx (conv_vae)."""
    folder = tmp_path_factory.mktemp("pipeline_models")
    shutil.copy(exported["unet_depth"][0] / "depth.onnx", folder)
    for part in ("encoder", "decoder"):
        shutil.copy(exported["conv_vae"][0] / f"{part}.onnx", folder)
    return folder


SEQUENCE_FRAMES = 20


@pytest.fixture(scope="session")
def sequence_bag(tmp_path_factory):
    """A converted synthetic NYU raw sequence: one room, 20 frames at 30 Hz, 160x120."""
    from rgbd_vae_training.bag.convert import nyu_raw_sequence, write_sequence
    from rgbd_vae_training.synth.generate import write_nyu_raw

    folder = tmp_path_factory.mktemp("sequence")
    write_nyu_raw(folder / "raw", scenes=1, frames=SEQUENCE_FRAMES, seed=5, width=160, height=120)
    write_sequence(nyu_raw_sequence(folder / "raw" / "synth_room_0000"), folder / "bag")
    return folder / "bag"
