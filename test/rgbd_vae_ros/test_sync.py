"""The keep-latest hand-over between subscriptions and a node's worker."""

import threading
import time


from rgbd_vae_ros.sync import LatestSlot


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
