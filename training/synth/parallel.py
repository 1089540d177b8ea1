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
from collections.abc import Callable, Iterable, Iterator

# A worker starts in about a second (a fresh interpreter importing numpy and the renderer): worth it
# only for this many jobs or more per worker.
JOBS_PER_WORKER = 16


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _worker_start(parent_pid: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle, and a worker whose parent died (killed
    mid-synth) exits instead of waiting for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def in_order(function: Callable, jobs: Iterable, workers: int | None = None) -> Iterator:
    """``function(job)`` for each job, in the jobs' order, on up to ``workers`` processes (default:
    the CPUs this process may use) when there are enough jobs to pay for starting them, else here.
    ``function`` must be importable (a module-level function). Stopping early cancels the rest."""
    jobs = list(jobs)
    workers = min(workers or available_cpus(), len(jobs) // JOBS_PER_WORKER)
    if workers < 2:
        yield from map(function, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the caller may hold torch's thread pool (the demo trains before it synthesises)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))
    try:
        yield from pool.map(function, jobs, chunksize=4)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
