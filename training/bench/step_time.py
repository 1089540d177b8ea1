"""The time of one training step of each config, for runs at equal training time (issue 19).

    OMP_NUM_THREADS=1 python -m rgbd_vae_training.bench.step_time tiny_mff_depth tiny_depth --runs 30

One step is forward, the config's own loss, backward and the optimiser update, on a random batch of
the config's batch size at its input size, on the CPU. The configs take turns step by step after
three warm-up steps, so all of them see the same load. Each row gives the fastest and the median
of ``--runs`` in wall time and in process CPU time. On a shared machine the fastest CPU time is the
steadiest of these: with one thread it is close to the time the step takes on an idle core.
``--budget-steps N`` adds, for each config, the steps that fit in N steps of the first config
(by fastest CPU time).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from .training import _random_batch


def step_times(configs: list[str], runs: int = 20, overrides: list[str] = ()) -> list[dict]:
    """One row per config: input shape, parameters, and the fastest / median step time in ms."""
    from ..train.config import load_config
    from ..train.loop import _build, optimizer_step
    from ..train.tasks import make_task

    if runs < 1:
        raise ValueError(f"runs must be 1 or more, got {runs}")
    cpu = torch.device("cpu")
    setups = []
    for name in configs:
        config = load_config(name, list(overrides))
        model, optimizer = _build(config, cpu)
        task = make_task(config)
        prepared = task.prepare(_random_batch(model, config.train.batch_size), cpu)
        setups.append((name, config, model.train(), optimizer, task, prepared, [], []))
    for i in range(runs + 3):
        for name, config, model, optimizer, task, prepared, wall, cpu_s in setups:
            start, start_cpu = time.perf_counter(), time.process_time()
            loss = task.loss(task.forward(model, prepared), prepared, step=i)["loss"]
            optimizer_step(loss, optimizer, None, config.train.grad_clip)
            if i >= 3:  # warm-up
                wall.append(time.perf_counter() - start)
                cpu_s.append(time.process_time() - start_cpu)
    return [{"config": name, "model": config.model_name, "input": list(prepared["input"].shape),
             "parameters": sum(p.numel() for p in model.parameters()), "runs": runs,
             "wall_fastest_ms": round(min(wall) * 1e3, 1), "wall_median_ms": round(float(np.median(wall)) * 1e3, 1),
             "cpu_fastest_ms": round(min(cpu_s) * 1e3, 1), "cpu_median_ms": round(float(np.median(cpu_s)) * 1e3, 1)}
            for name, config, model, optimizer, task, prepared, wall, cpu_s in setups]


def add_budget(rows: list[dict], steps: int) -> list[dict]:
    """Adds to each row ``budget_s`` (``steps`` of the first row, by fastest CPU time) and
    ``steps_in_budget`` (the steps of that row that take the same time)."""
    budget_ms = steps * rows[0]["cpu_fastest_ms"]
    for row in rows:
        row["budget_s"] = round(budget_ms / 1e3, 1)
        row["steps_in_budget"] = int(round(budget_ms / row["cpu_fastest_ms"]))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="training configs (names or YAML files)")
    parser.add_argument("--runs", type=int, default=20, help="timed steps per config after 3 warm-up steps")
    parser.add_argument("--budget-steps", type=int, default=0,
                        help="steps of the first config; adds each config's steps in the same CPU time")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs is {args.runs}; expected 1 or more")
    rows = step_times(args.configs, args.runs)
    if args.budget_steps > 0:
        add_budget(rows, args.budget_steps)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
