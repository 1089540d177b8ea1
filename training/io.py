"""Atomic file output for the tools: the runtime's helpers (see :mod:`rgbd_vae_ros.files`)."""

from rgbd_vae_ros.files import atomic_output, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_write_text"]
