"""Shared fixtures: an isolated DDS domain for this test run and an rclpy context per test."""

from __future__ import annotations

import os

import pytest

# Keep discovery on this machine and away from other test runs on it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
# One torch thread in the tests and every process they start (set before torch loads). The tests
# train tiny models, which gain little from a second thread; on a loaded machine two threads wait on
# each other at every parallel region (a descheduled thread costs a whole time slice), which made a
# 1-minute training test take 16 minutes. Speed is measured by `rgbd-vae bench`, not here.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rclpy_context():
    """A real rclpy context, initialised for one test and shut down after it."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


# Tests that wait for a model to train are slow by nature; mark them so `pytest -m "not slow"` is
# a quick loop. (Others that take seconds carry @pytest.mark.slow themselves.)
TRAINING_FIXTURES = {"tiny_depth_checkpoint", "tiny_vae_checkpoint", "learning_data"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
