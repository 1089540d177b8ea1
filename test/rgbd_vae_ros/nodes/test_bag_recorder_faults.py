"""``bag_recorder`` when the disk cannot keep up or fills up (SPEC §8): the write queue stays
bounded and counts its drops, a failed write is reported at once, and what was written is kept."""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image

from rgbd_vae_ros import bags
from rgbd_vae_ros.bags import BagError, BagReader
from rgbd_vae_ros.conversion import numpy_to_image
from rgbd_vae_ros.nodes.bag_recorder import BagRecorderNode

QUEUE_SIZE = 8
FILE_SIZE_LIMIT = 3 * 1024 * 1024
WRITTEN_BEFORE_FULL = 5


def _image(i: int, height: int = 4, width: int = 6):
    msg = numpy_to_image(np.full((height, width, 3), i % 256, np.uint8), "rgb8")
    msg.header.stamp.sec = i
    return msg


@pytest.mark.slow
def test_a_stalled_then_full_disk_drops_counted_reports_at_once_and_keeps_what_was_written(
        harness, rclpy_context, tmp_path, monkeypatch, capfd):
    disk_moves = threading.Event()
    writes = []
    original = bags.BagWriter.write_raw

    def stalling_then_full(self, topic, msgtype, stamp_ns, data):
        disk_moves.wait(60)  # the disk stalls: the recorder's queue fills up behind it
        if len(writes) >= WRITTEN_BEFORE_FULL:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, topic, msgtype, stamp_ns, data)
        writes.append(stamp_ns)

    monkeypatch.setattr(bags.BagWriter, "write_raw", stalling_then_full)
    publisher = harness.publisher(Image, "/rec/full")
    recorder = harness.add(BagRecorderNode(tmp_path / "out", topics=["/rec/full"], queue_size=QUEUE_SIZE,
                                           types={"/rec/full": "sensor_msgs/msg/Image"}, context=rclpy_context))
    assert harness.wait_for(lambda: recorder.publisher_count("/rec/full") > 0)
    published = 0
    deadline = time.monotonic() + 60
    while recorder.dropped < 5 and time.monotonic() < deadline:
        publisher.publish(_image(published))
        published += 1
        time.sleep(0.02)
    assert recorder.dropped >= 5, "a stalled writer should make the recorder drop, not queue without end"
    assert recorder.queue_high_water <= QUEUE_SIZE == recorder.queue_size

    disk_moves.set()  # the stalled writes go on, and the disk fills after WRITTEN_BEFORE_FULL messages
    assert harness.wait_for(lambda: recorder.write_error is not None, timeout_s=30)
    assert isinstance(recorder.write_error, OSError) and recorder.write_error.errno == errno.ENOSPC
    dropped_at_failure = recorder.dropped
    publisher.publish(_image(published))  # after the failure: dropped, not queued
    assert harness.wait_for(lambda: recorder.dropped > dropped_at_failure, timeout_s=30)
    assert recorder.queue_high_water <= QUEUE_SIZE

    with pytest.raises(BagError, match=r"out is incomplete: a write failed \(No space left on device\); it holds the "
                                       rf"{WRITTEN_BEFORE_FULL} messages written before the failure$"):
        recorder.finish()
    recorder.finish()  # once is enough: a second call (an error path's cleanup) neither raises nor deletes
    recorder.destroy_node()
    failures = [line for line in capfd.readouterr().err.splitlines() if "cannot write the bag" in line]
    assert len(failures) == 1  # reported once, at the failure
    assert f"cannot write the bag {tmp_path / 'out'}: No space left on device; recording stopped after" in failures[0]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # kept under its name, no staging left
    with BagReader(tmp_path / "out") as bag:
        stamps = [m.header.stamp.sec for _, m in bag.decoded("/rec/full")]
        assert [t for _, t, _ in bag.messages()] == writes
    assert len(stamps) == WRITTEN_BEFORE_FULL and stamps == sorted(stamps) and stamps[-1] < published


def _limit_file_size(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rgbd_vae_bag_record_onto_a_full_disk_says_so_at_once_keeps_the_bag_and_exits_1(harness, tmp_path, storage):
    out = tmp_path / "out"
    publisher = harness.publisher(Image, "/full/image")
    recorder = subprocess.Popen(
        [str(Path(sys.executable).with_name("rgbd-vae")), "bag", "record", str(out), "/full/image",
         "--duration", "300", "--storage", storage], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        preexec_fn=_limit_file_size(FILE_SIZE_LIMIT), env={**os.environ, "ROS_LOG_DIR": str(tmp_path / "log")})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(recorder.stderr), daemon=True)
    reader.start()
    try:
        # 230 KB frames: the third MiB (an MCAP chunk, a sqlite3 commit) goes past the 3 MiB file size limit.
        deadline, i = time.monotonic() + 60, 0
        while not any("cannot write the bag" in line for line in lines) and time.monotonic() < deadline:
            publisher.publish(_image(i, 240, 320))
            i += 1
            time.sleep(0.1)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    reader.join(timeout=10)
    stderr = "".join(lines)
    print(stderr)
    assert recorder.returncode == 1, stderr
    failures = [line for line in lines if "cannot write the bag" in line]
    assert len(failures) == 1 and f"cannot write the bag {out}: " in failures[0], stderr
    assert re.search(r": (File too large|database or disk is full|disk I/O error); recording stopped after", failures[0])
    # What had not reached the disk whole (the MCAP chunk being written, sqlite's open transaction) is lost;
    # the bag is closed at the state before it.
    kept = re.search(rf"error: {re.escape(str(out))} is incomplete: a write failed \([^)]+\); (\d+) of the "
                     r"(\d+) messages written read back from it, the rest did not reach the disk\.", stderr)
    assert kept and 0 < int(kept.group(1)) < int(kept.group(2)), stderr
    with BagReader(out) as bag:
        stamps = [m.header.stamp.sec for _, m in bag.decoded("/full/image")]
    assert len(stamps) == int(kept.group(1)) and stamps == sorted(stamps)
    assert "bag_recorder: wrote " in stderr and ", dropped " in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "out"]  # no staging folder left
