"""Rendering on every core: ``synth`` renders scenes one by one in Python, so a walk of 2000 rooms
took as long on 2 cores as on one. :func:`in_order` hands the rendering to worker processes and
gives the results back in order, so the files written (by the calling process) are the same bytes
as a serial run's: every scene and visit draws from its own seeded generator.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import islice

# A worker starts in about a second (a fresh interpreter importing numpy and the renderer): worth it
# only for this many jobs or more per worker.
JOBS_PER_WORKER = 16
# A job's frames wait whole until they are written: a longer scene renders in the calling process, a
# frame at a time (a 640x480 frame is a few MB).
MAX_FRAMES_PER_JOB = 8
# The most worker processes synth starts; unset: one per CPU this process may use. The test suite
# sets 1, so that its parallel test processes do not each start more.
WORKERS_ENV = "RGBD_VAE_SYNTH_WORKERS"


def available_cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get(WORKERS_ENV, "").strip()
    if not limit:
        return cpus
    if not (limit.isascii() and limit.isdigit()) or int(limit) < 1:  # a typo is not "as many as there are CPUs"
        raise ValueError(f"{WORKERS_ENV} is {limit!r}; expected a whole number of worker processes, 1 or more "
                         "(unset: one per CPU)")
    return min(cpus, int(limit))


def _worker_start(parent_pid: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle, and a worker whose parent died (killed
    mid-synth) exits instead of waiting for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _listed(render: Callable, job) -> list:
    """A worker's job: every item of ``render(job)``, sent back together."""
    return list(render(job))


@contextmanager
def in_order(render: Callable, jobs: Iterable, workers: int | None = None,
             frames_per_job: int = 1) -> Iterator[Iterator]:
    """A context whose value gives ``render(job)`` (an iterator of frames) for each job, in the jobs'
    order. The jobs render on up to ``workers`` processes (default: the CPUs this process may use, at
    most ``$RGBD_VAE_SYNTH_WORKERS``) when there are enough of them to pay for starting workers, else
    here, a frame at a time as they are taken.

    ``render`` must be importable (a module-level function), and a script that calls this needs the
    usual ``if __name__ == "__main__":`` guard (workers are spawned). A worker's frames wait whole
    until they are taken, so jobs of more than :data:`MAX_FRAMES_PER_JOB` frames render here, and at
    most two jobs per worker wait at once. Leaving the context (at the end, on an error or early)
    cancels the jobs not started and waits for the ones running."""
    jobs = list(jobs)
    workers = min(workers or available_cpus(), len(jobs) // JOBS_PER_WORKER)
    if workers < 2 or frames_per_job > MAX_FRAMES_PER_JOB:
        yield map(render, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the caller may hold torch's thread pool (the demo trains before it synthesises)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))
    try:
        yield _windowed(pool, partial(_listed, render), jobs, 2 * workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _windowed(pool, function: Callable, jobs: list, window: int) -> Iterator:
    """The results of ``function`` over ``jobs`` in order, with at most ``window`` jobs submitted
    and not yet taken. A worker process that dies (killed, out of memory) is named as such."""
    from concurrent.futures.process import BrokenProcessPool

    pending: deque = deque()
    upcoming = iter(jobs)
    for job in islice(upcoming, window):
        pending.append(pool.submit(function, job))
    while pending:
        try:
            result = pending.popleft().result()
        except BrokenProcessPool:
            raise RuntimeError(f"a synth worker process died (killed or out of memory); set "
                               f"{WORKERS_ENV}=1 to render in this process") from None
        for job in islice(upcoming, 1):
            pending.append(pool.submit(function, job))
        yield result
