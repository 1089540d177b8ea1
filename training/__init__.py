"""Training tools for rgbd_vae_ros: data, models' training loop, evaluation, export, benchmarks.

Installed as ``rgbd_vae_training``; the runtime package ``rgbd_vae_ros`` never imports it.
"""
