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
    columns = [("case", "name", ""), ("median ms", "median_ms", ".4f"), ("p95 ms", "p95_ms", ".4f"),
               ("min ms", "min_ms", ".4f")]
    return rows_table([r.as_dict() for r in rows], columns)


def rows_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """An aligned text table: ``columns`` are (header, row key, format spec); text columns are
    left-aligned, numbers right-aligned; a missing value prints as '-'."""
    cells = [[header for header, _, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(key) is None else format(row[key], spec) for _, key, spec in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    numeric = [all(isinstance(r.get(key), (int, float)) for r in rows) for _, key, _ in columns]
    return "\n".join("  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(line, widths, numeric)).rstrip()
                     for line in cells)
