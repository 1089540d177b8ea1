"""``rgbd-vae train``: configuration, tasks (what a batch means to a VAE or a depth model), the loop."""
