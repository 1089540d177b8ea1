"""Stamp matching of colour and depth, and the keep-latest hand-over."""

import threading
import time

import pytest

from rgbd_vae_ros.sync import LatestSlot, StampMatcher


def test_frames_within_the_slop_pair_up_in_either_order():
    m = StampMatcher(slop_s=0.01)
    assert m.add(0, 1.000, "rgb1") is None
    assert m.add(1, 1.008, "d1") == ("rgb1", "d1")
    assert m.add(1, 2.000, "d2") is None
    assert m.add(0, 1.995, "rgb2") == ("rgb2", "d2")
    assert m.unmatched == 0


def test_the_closest_partner_wins_and_older_frames_are_counted_as_unmatched():
    m = StampMatcher(slop_s=0.02)
    for stamp in (1.00, 1.033, 1.066):
        m.add(1, stamp, f"d{stamp}")
    assert m.add(0, 1.060, "rgb") == ("rgb", "d1.066")
    assert m.unmatched == 2  # d1.0 and d1.033 can no longer pair


def test_streams_never_in_sync_never_pair_and_the_queue_stays_bounded():
    m = StampMatcher(slop_s=0.005, queue_size=3)
    for i in range(20):
        assert m.add(0, i * 0.1, i) is None
        assert m.add(1, i * 0.1 + 0.05, i) is None
    assert m.unmatched == 2 * (20 - 3)
    assert all(len(q) <= 3 for q in m._queues)
    with pytest.raises(ValueError):
        StampMatcher(slop_s=-1)


def test_latest_slot_keeps_the_newest_and_counts_what_it_replaced():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take(0.1) == 4 and slot.dropped == 4
    assert slot.take(0.01) is None  # empty: times out


def test_latest_slot_wakes_a_waiting_worker_and_close_releases_it():
    slot, got = LatestSlot(), []
    worker = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    worker.start()
    time.sleep(0.05)
    slot.put("frame")
    worker.join(1.0)
    assert got == ["frame"]
    waiter = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    waiter.start()
    slot.close()
    waiter.join(1.0)
    assert not waiter.is_alive() and got[-1] is None
