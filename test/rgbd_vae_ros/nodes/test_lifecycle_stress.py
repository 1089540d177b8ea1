"""Lifecycle transitions at any time under a 30 Hz stream never crash the process (SPEC §4)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import numpy_to_image


CYCLES = 200


@pytest.mark.slow
def test_200_transition_cycles_under_a_30_hz_stream_leave_the_pipeline_alive_and_answering(harness, pipeline_models,
                                                                                             tmp_path):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    # Its log goes to a file: each activation logs a line, and an undrained pipe would fill and block it.
    log = open(tmp_path / "pipeline.log", "w+")
    process = subprocess.Popen([str(Path(sys.executable).with_name("rgbd_pipeline")), "--ros-args", "-p",
                                f"model:={pipeline_models}", "-p", "reliable_input:=true"], stdout=log,
                               stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    try:
        change = harness.probe.create_client(ChangeState, "/rgbd_pipeline/change_state")
        assert change.wait_for_service(timeout_sec=60), "the pipeline's lifecycle services never appeared"
        decoded = harness.listen(Image, "decoded/image")
        pub = harness.publisher(Image, "image")
        pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)

        def stream():  # a camera at 30 Hz, whatever state the node is in
            i = 0
            while not stop.is_set():
                header = Header(frame_id="cam")
                header.stamp.sec, header.stamp.nanosec = divmod(i * 33_333_333, 1_000_000_000)
                pub.publish(numpy_to_image(pixels, "rgb8", header))
                i += 1
                time.sleep(1 / 30)

        threading.Thread(target=stream, daemon=True).start()
        assert harness.wait_for(lambda: decoded, timeout_s=60), "no output before the cycles"

        def transition(transition_id: int) -> bool:
            future = change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
            assert harness.wait_for(lambda: future.done() or process.poll() is not None, timeout_s=60), \
                f"transition {transition_id} got no answer"
            assert process.poll() is None, f"the pipeline exited during transition {transition_id}"
            return future.result().success

        for cycle in range(CYCLES):
            for transition_id in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                                  Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
                assert transition(transition_id), (cycle, transition_id)
            assert process.poll() is None, f"the pipeline exited after {cycle + 1} cycles"
        answered = len(decoded)
        assert harness.wait_for(lambda: len(decoded) > answered, timeout_s=60), "no output after the cycles"
    finally:
        stop.set()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.seek(0)
        output = log.read()
        print(output[-4000:])  # shown when the test fails
    assert code == 0 and "Traceback" not in output and "InvalidHandle" not in output, output[-3000:]
