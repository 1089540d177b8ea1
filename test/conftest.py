"""Shared fixtures: an isolated DDS domain for this test run and an rclpy context per test."""

from __future__ import annotations

import os

import pytest

# Keep discovery on this machine and away from other test runs on it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))


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
