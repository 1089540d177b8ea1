"""Pairing an image with the depth and camera_info of its stamp, the same live and offline."""

import time
from types import SimpleNamespace

import pytest

from rgbd_vae_ros.frames import FrameAssembler


def _msg(stamp_s: float, name: str):
    sec, nanosec = divmod(round(stamp_s * 1e9), 1_000_000_000)
    return SimpleNamespace(name=name, header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec)))


def _names(frames):
    return [(f.image.name, f.depth and f.depth.name, f.camera_info and f.camera_info.name) for f in frames]


def test_an_image_waits_for_its_partners_then_takes_the_nearest_within_the_slop():
    a = FrameAssembler(slop_s=0.02, streams=("depth", "camera_info"))
    assert a.add("depth", _msg(0.990, "d0")) == []
    assert a.add("image", _msg(1.000, "rgb1")) == []  # depth has not reached 1.000 yet
    assert a.add("depth", _msg(1.005, "d1")) == []  # nor has camera_info
    assert _names(a.add("camera_info", _msg(1.000, "i1"))) == [("rgb1", "d1", "i1")]
    assert a.pending == 0


def test_either_order_gives_the_same_frames():
    messages = [("depth", _msg(1.000, "d1")), ("image", _msg(1.004, "rgb1")), ("depth", _msg(1.033, "d2")),
                ("image", _msg(1.037, "rgb2")), ("depth", _msg(1.066, "d3")), ("image", _msg(1.070, "rgb3"))]
    orders = [messages, sorted(messages, key=lambda m: m[0] != "image")]  # every image before any depth
    results = []
    for order in orders:
        a = FrameAssembler(slop_s=0.02, streams=("depth",))
        frames = [f for stream, msg in order for f in a.add(stream, msg)] + a.flush()
        results.append(_names(frames))
    assert results[0] == results[1] == [("rgb1", "d1", None), ("rgb2", "d2", None), ("rgb3", "d3", None)]


def test_nothing_within_the_slop_means_no_partner_and_streams_never_in_sync_never_pair():
    a = FrameAssembler(slop_s=0.005, streams=("depth",))
    frames = []
    for i in range(20):
        frames += a.add("image", _msg(i * 0.1, f"rgb{i}"))
        frames += a.add("depth", _msg(i * 0.1 + 0.05, f"d{i}"))
    assert len(frames) == 20 and all(f.depth is None for f in frames)


def test_live_an_unseen_stream_does_not_hold_images_and_a_stopped_one_expires():
    a = FrameAssembler(slop_s=0.02, streams=("depth",), await_unseen=False)
    assert _names(a.add("image", _msg(1.0, "rgb1"))) == [("rgb1", None, None)]  # RGB-only camera
    a.add("depth", _msg(1.030, "d2"))
    assert a.add("image", _msg(1.033, "rgb2")) == []  # depth is flowing: wait for it
    assert a.expire(max_wait_s=60.0) == []
    time.sleep(0.01)
    assert _names(a.expire(max_wait_s=0.005)) == [("rgb2", "d2", None)]  # it stopped: go with what is there


def test_waiting_images_are_bounded_and_the_slop_can_change():
    a = FrameAssembler(slop_s=0.02, streams=("depth",), max_pending=3)
    a.add("depth", _msg(0.0, "d0"))
    released = [f for i in range(1, 6) for f in a.add("image", _msg(i, f"rgb{i}"))]
    assert [f.image.name for f in released] == ["rgb1", "rgb2"] and a.pending == 3
    a.set_slop(10.0)
    assert _names(a.flush())[0] == ("rgb3", "d0", None)
    with pytest.raises(ValueError, match="slop_s is -1"):
        FrameAssembler(slop_s=-1)
    with pytest.raises(ValueError, match="stream 'latent'"):
        FrameAssembler(slop_s=0).add("latent", _msg(0, "x"))
