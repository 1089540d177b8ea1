"""Shared fixtures: an isolated DDS domain for each test and an rclpy context per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep discovery on this machine and away from other test runs on it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# A DDS domain per test, so that nothing a test leaves behind (a process still exiting, a
# participant not yet destroyed) is discovered by the next one. Under pytest-xdist (`make test` runs
# two workers) worker w of n takes the domains 1 + w + k*n: the workers never share one. The run's
# process id offsets where each run starts, away from another test run on the same machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
_RUN = os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()
_DOMAINS_PER_WORKER = max(1, 100 // _WORKERS)
_tests_started = [0]


def _domain(index: int) -> str:
    return str(1 + _WORKER + ((_RUN + index) % _DOMAINS_PER_WORKER) * _WORKERS)


os.environ["ROS_DOMAIN_ID"] = _domain(0)  # set, not defaulted: a worker inherits the controller's


@pytest.fixture(autouse=True)
def _a_dds_domain_of_its_own(monkeypatch):
    _tests_started[0] += 1
    monkeypatch.setenv("ROS_DOMAIN_ID", _domain(_tests_started[0]))


# One torch thread in the tests and every process they start (set before torch loads). The tests
# train tiny models, which gain little from a second thread; on a loaded machine two threads wait on
# each other at every parallel region (a descheduled thread costs a whole time slice), which made a
# 1-minute training test take 16 minutes. Speed is measured by `rgbd-vae bench`, not here.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Likewise one process per synth (training/synth/parallel.py): the test processes already fill the
# cores, and a synth's workers beside them starved the bag player's timing test. The tests of the
# workers ask for two.
os.environ.setdefault("RGBD_VAE_SYNTH_WORKERS", "1")


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
    """``build_once(name, build)``: ``build(folder)`` runs once per test run and its JSON result is
    returned to every caller. Under pytest-xdist the workers share it: the first to ask builds while
    holding a lock, the others wait and reuse (a tiny model is trained once, not once per worker)."""
    import fcntl
    import json
    import shutil

    shared = "PYTEST_XDIST_WORKER" in os.environ
    root = tmp_path_factory.getbasetemp().parent if shared else None  # the run's folder, above each worker's

    def get(name: str, build):
        if not shared:
            return json.loads(json.dumps(build(tmp_path_factory.mktemp(name))))  # as a worker would see it
        folder, done = root / name, root / f"{name}.built.json"
        with open(root / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                done.write_text(json.dumps(build(folder)))
            return json.loads(done.read_text())

    return get


# Tiny models trained once per run (shared by the training, evaluation, demo and depth-geometry tests).
# Many short scenes: held-out scenes then differ from the training ones in room, furniture and texture.
LEARNING = {"scenes": 100, "frames": 1, "seed": 11, "width": 128, "height": 96}


@pytest.fixture(scope="session")
def learning_data(build_once):
    """The demo's training rooms in the NYU raw layout (the VAE's tests train on these)."""
    from rgbd_vae_training.synth.generate import write_nyu_raw

    return Path(build_once("learning_data", lambda out: (write_nyu_raw(out, **LEARNING), str(out))[1]))


@pytest.fixture(scope="session")
def depth_learning_data(build_once):
    """The same rooms in the NYU labeled layout, depth over the whole frame: the demo's depth model's
    training rooms (``rgbd-vae demo`` renders these)."""
    from rgbd_vae_training.synth.generate import write_nyu_mat

    return Path(build_once("depth_learning_data", lambda out: (write_nyu_mat(out, **LEARNING), str(out))[1]))


def _train_tiny(build_once, config_name: str, data, overrides: tuple[str, ...] = ()) -> Path:
    def build(out):
        from rgbd_vae_training.train.config import load_config
        from rgbd_vae_training.train.loop import train

        return str(train(load_config(config_name, list(overrides)), data, out, progress=False).checkpoint)

    return Path(build_once(config_name, build))


@pytest.fixture(scope="session")
def tiny_depth_checkpoint(build_once, depth_learning_data):
    """``tiny_depth`` trained as the demo trains it (about a minute on 2 cores)."""
    return _train_tiny(build_once, "tiny_depth", depth_learning_data)


# The tests' VAE: the demo's (tiny_vae_places: tiny_vae with a place term), trained 300 steps on the
# 100 rooms above, the place term's views from a walk through 100 rooms (the demo trains it 30x as long
# on 10x the rooms and a walk of 20x the rooms: minutes). Its resolved config.yaml, beside the checkpoint, is what a test passes to
# ``rgbd-vae demo --vae-config`` so that the demo reuses this checkpoint.
TESTS_VAE = ("train.epochs=50", "train.max_steps=300")
TESTS_WALK = {"rooms": 100, "frames_per_visit": 1, "seed": 11, "width": 128, "height": 96}


@pytest.fixture(scope="session")
def tiny_vae_checkpoint(build_once, learning_data):
    from rgbd_vae_training.synth.revisit import write_nyu_raw_revisit

    walk = build_once("vae_walk", lambda out: (write_nyu_raw_revisit(out, **TESTS_WALK), str(out))[1])
    return _train_tiny(build_once, "tiny_vae_places", learning_data, (*TESTS_VAE, f"train.place_data={walk}"))


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
TRAINING_FIXTURES = {"tiny_depth_checkpoint", "tiny_vae_checkpoint", "learning_data", "depth_learning_data"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
