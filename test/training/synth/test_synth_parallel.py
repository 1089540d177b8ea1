"""Synth renders on every core and writes what one core would have written."""

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rgbd_vae_training.synth.generate import generate_scene, scene_frames
from rgbd_vae_training.synth.parallel import JOBS_PER_WORKER, MAX_FRAMES_PER_JOB, in_order
from rgbd_vae_training.synth.revisit import plan_visits, visit_frames

SIZE = (24, 18)
FIELDS = ("rgb_u8", "depth_ir_m", "depth_rgb_m", "object_id_rgb", "pose_rgb")


def _same_frames(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.rgb_stamp_s, x.depth_stamp_s) == (y.rgb_stamp_s, y.depth_stamp_s)
        for field in FIELDS:
            left, right = getattr(x, field), getattr(y, field)
            assert (left is None) == (right is None)
            if left is not None:
                np.testing.assert_array_equal(left, right)


def _all(function, jobs, **kwargs):
    with in_order(function, jobs, **kwargs) as results:
        return [frame for frames in results for frame in frames]


def test_workers_render_the_frames_one_process_renders_in_the_same_order():
    scenes = [((5, s, 2, *SIZE), {"truth": False}) for s in range(2 * JOBS_PER_WORKER)]
    serial = _all(scene_frames, scenes, workers=1)
    _same_frames(_all(scene_frames, scenes, workers=2), serial)
    visits = [(5, v, visit, 1, *SIZE) for v, visit in enumerate(plan_visits(8, 5))]  # 32 visits
    _same_frames(_all(visit_frames, visits, workers=2), _all(visit_frames, visits, workers=1))


def test_results_wait_in_a_window_and_long_scenes_render_here_a_frame_at_a_time():
    before = set(multiprocessing.active_children())
    long = [((5, s, MAX_FRAMES_PER_JOB + 1, *SIZE), {"truth": False}) for s in range(4 * JOBS_PER_WORKER)]
    with in_order(scene_frames, long, workers=2, frames_per_job=MAX_FRAMES_PER_JOB + 1) as results:
        first = next(results)
        assert not isinstance(first, list)  # an iterator of the first scene's frames, made as taken
        assert set(multiprocessing.active_children()) == before
    from concurrent.futures import ThreadPoolExecutor

    from rgbd_vae_training.synth.parallel import _windowed

    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, *args):
            submitted.append(args[0])
            return super().submit(fn, *args)

    with Counting(2) as pool:
        results = _windowed(pool, abs, list(range(-10, 0)), window=3)
        assert next(results) == 10 and len(submitted) == 4  # the window refilled as the first was taken
        assert list(results) == list(range(9, 0, -1)) and len(submitted) == 10


@pytest.mark.parametrize("style", ["train", "varied"])
def test_frames_without_the_rgb_cameras_truth_are_otherwise_the_same(style):
    with_truth = list(generate_scene(3, 1, 3, *SIZE, style=style))
    without = list(generate_scene(3, 1, 3, *SIZE, style=style, truth=False))
    assert all(f.depth_rgb_m is None and f.object_id_rgb is None for f in without)
    assert all(f.depth_rgb_m is not None for f in with_truth)
    for a, b in zip(with_truth, without):
        np.testing.assert_array_equal(a.rgb_u8, b.rgb_u8)  # the noise generator drew the same numbers
        np.testing.assert_array_equal(a.depth_ir_m, b.depth_ir_m)
        np.testing.assert_array_equal(a.pose_rgb, b.pose_rgb)


def test_few_jobs_stay_in_this_process_and_leaving_early_or_on_an_error_ends_the_workers():
    before = set(multiprocessing.active_children())
    few = [((5, s, 1, *SIZE), {"truth": False}) for s in range(JOBS_PER_WORKER + 1)]
    with in_order(scene_frames, few, workers=2) as results:
        next(results)
        assert set(multiprocessing.active_children()) == before  # one worker's worth: no pool
    many = [((5, s, 1, *SIZE), {"truth": False}) for s in range(40 * JOBS_PER_WORKER)]
    with in_order(scene_frames, many, workers=2) as results:
        next(results)
        assert len(set(multiprocessing.active_children()) - before) == 2
    assert set(multiprocessing.active_children()) == before  # the jobs not started cancelled, workers joined
    with pytest.raises(OSError, match="disk full"):
        with in_order(scene_frames, many, workers=2) as results:
            for _ in results:
                raise OSError("disk full")  # the writer fails part way
    assert set(multiprocessing.active_children()) == before


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # exited; its new parent has not reaped it yet


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_synth_killed_part_way_leaves_no_worker_behind():
    script = (
        "import os, signal, multiprocessing\n"
        "from rgbd_vae_training.synth.generate import scene_frames\n"
        "from rgbd_vae_training.synth.parallel import in_order\n"
        "jobs = [((5, s, 1, 24, 18), {'truth': False}) for s in range(4000)]\n"
        "context = in_order(scene_frames, jobs, workers=2)\n"
        "next(context.__enter__())\n"
        "print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    workers = [int(pid) for pid in killed.stdout.split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 120  # a worker checks for its parent twice a second
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(pid) for pid in workers), [pid for pid in workers if not _gone(pid)]
    assert os.getpid() not in workers


def test_the_environment_caps_the_workers(monkeypatch):
    from rgbd_vae_training.synth.parallel import WORKERS_ENV, available_cpus

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    cpus = available_cpus()
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert available_cpus() == 1
    monkeypatch.setenv(WORKERS_ENV, str(cpus + 5))
    assert available_cpus() == cpus  # never more than the CPUs
    for bad in ("many", "0", "-2", "1.5"):  # a typo is refused, not read as "no cap"
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=f"RGBD_VAE_SYNTH_WORKERS is '{bad}'; expected a whole number"):
            available_cpus()
    monkeypatch.setenv(WORKERS_ENV, "1")
    before = set(multiprocessing.active_children())
    jobs = [((5, s, 1, *SIZE), {"truth": False}) for s in range(4 * JOBS_PER_WORKER)]
    with in_order(scene_frames, jobs) as results:  # the default: capped at one, so no pool
        next(results)
        assert set(multiprocessing.active_children()) == before


def test_a_worker_that_dies_is_named_in_one_sentence():
    before = set(multiprocessing.active_children())
    with pytest.raises(RuntimeError, match="a synth worker process died .* set RGBD_VAE_SYNTH_WORKERS=1"):
        with in_order(os._exit, [3] * (2 * JOBS_PER_WORKER), workers=2) as results:  # each job ends its worker
            list(results)
    assert set(multiprocessing.active_children()) == before


def test_a_bad_worker_count_is_one_sentence_before_an_earlier_synth_is_touched(tmp_path, monkeypatch, capsys):
    from rgbd_vae_training.cli import main as cli
    from rgbd_vae_training.synth.generate import is_complete

    settings = {"scenes": 1, "frames": 1, "seed": 0, "width": 32, "height": 24}
    assert cli(["synth", "--layout", "nyu-raw", "--out", str(tmp_path), "--scenes", "1", "--frames", "1",
                "--width", "32", "--height", "24"]) == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.setenv("RGBD_VAE_SYNTH_WORKERS", "many")
    capsys.readouterr()
    assert cli(["synth", "--layout", "nyu-raw", "--out", str(tmp_path), "--scenes", "2", "--frames", "1",
                "--width", "32", "--height", "24"]) == 1
    err = capsys.readouterr().err
    assert "RGBD_VAE_SYNTH_WORKERS is 'many'; expected a whole number of worker processes" in err
    assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert is_complete(tmp_path, "nyu-raw", **settings)  # the earlier synth is still whole and marked
