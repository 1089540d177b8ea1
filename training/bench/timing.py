"""Timing helpers shared by the benchmarks: warm up, run many times, report median and p95."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    name: str
    runs: int
    median_ms: float
    p95_ms: float
    min_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def time_call(name: str, fn: Callable[[], object], runs: int = 200, warmup: int = 10) -> Timing:
    """Time ``fn()`` ``runs`` times after ``warmup`` calls."""
    if runs < 1:
        raise ValueError(f"runs is {runs}; expected at least 1")
    for _ in range(warmup):
        fn()
    samples_ns = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples_ns[i] = time.perf_counter_ns() - start
    samples_ms = samples_ns / 1e6
    return Timing(
        name=name,
        runs=runs,
        median_ms=float(np.median(samples_ms)),
        p95_ms=float(np.percentile(samples_ms, 95)),
        min_ms=float(samples_ms.min()),
    )


def format_table(rows: list[Timing]) -> str:
    width = max(len(r.name) for r in rows)
    lines = [f"{'case':<{width}}  {'median ms':>10}  {'p95 ms':>10}  {'min ms':>10}"]
    lines += [f"{r.name:<{width}}  {r.median_ms:>10.4f}  {r.p95_ms:>10.4f}  {r.min_ms:>10.4f}" for r in rows]
    return "\n".join(lines)
