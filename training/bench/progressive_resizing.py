"""Progressive resizing against fixed-size training at equal wall time (issue 19).

    OMP_NUM_THREADS=1 python -m rgbd_vae_training.bench.progressive_resizing --data DIR --out DIR

1. The time of one training step (forward, backward, update) of a fresh model at each size of the
   schedule, on a real batch of the data (the fastest of ``--runs``): the time per epoch at that size.
2. Fixed size: ``--steps`` steps at the model's input size; its wall time is the budget.
3. Progressive: the schedule's epochs and steps chosen so that the run takes the fixed run's wall
   time (a quarter of it at each smaller size, the rest at full size), from step 1's times scaled
   by what the fixed run's steps really took (data loading, checkpoints, a busy machine).
4. Both checkpoints through ``rgbd-vae eval depth`` (held-out split): AbsRel, delta1.

Prints one JSON object (the measured wall time of each run included) and writes it to OUT/result.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from rgbd_vae_ros.files import atomic_write_text

from ..evaluate import evaluate
from ..train.config import load_config
from ..train.loop import resize_batch, to_training_layout, train
from ..train.tasks import make_task, open_samples
from .timing import time_call

SIZES = ((48, 64), (72, 96), (96, 128))  # tiny_mff_depth's input is 96x128


def step_seconds(config_name: str, overrides: list[str], data: str, size: tuple[int, int], runs: int) -> float:
    """Median seconds of one optimiser step of a fresh model on a real batch resized to ``size``."""
    from rgbd_vae_ros.models import build_model

    config = load_config(config_name, overrides)
    task = make_task(config)
    dataset = open_samples(task, data, "train", augment=False, cache=True)
    batch = {k: torch.stack([dataset[i][k] for i in range(config.train.batch_size)]) for k in ("rgb", "depth", "valid")}
    prepared = resize_batch(task.prepare(batch, torch.device("cpu")), size)
    torch.manual_seed(0)
    model = to_training_layout(build_model(config.model_name, config.model), torch.device("cpu")).train()  # as train runs it
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr)

    def step():
        loss = task.loss(task.forward(model, prepared), prepared, 0)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_call(f"{size}", step, runs=runs, warmup=2).min_ms / 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="tiny_mff_depth")
    parser.add_argument("--steps", type=int, default=300, help="steps of the fixed-size run")
    parser.add_argument("--runs", type=int, default=8, help="timed steps per size (the fastest counts)")
    parser.add_argument("--seed", type=int, default=0, help="train.seed of both runs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    base = ["train.validate=false", "train.epochs=100000", f"train.seed={args.seed}"]
    config = load_config(args.config, base)
    task = make_task(config)
    steps_per_epoch = len(open_samples(task, args.data, "train", augment=False)) // config.train.batch_size

    seconds = {f"{h}x{w}": step_seconds(args.config, base, args.data, (h, w), args.runs) for h, w in SIZES}
    per_epoch = {size: s * steps_per_epoch for size, s in seconds.items()}
    full = f"{SIZES[-1][0]}x{SIZES[-1][1]}"
    result = {"config": args.config, "seed": args.seed, "steps_per_epoch": steps_per_epoch,
              "step_s": {k: round(v, 4) for k, v in seconds.items()},
              "epoch_s": {k: round(v, 2) for k, v in per_epoch.items()}, "runs": {}}

    def run(name: str, overrides: list[str]) -> float:
        run_config = load_config(args.config, base + overrides)
        started = time.perf_counter()
        trained = train(run_config, args.data, out / name, progress=False)
        wall_s = time.perf_counter() - started
        metrics = evaluate("depth", str(trained.checkpoint), args.data, out / name / "eval")["depth"]
        result["runs"][name] = {"steps": trained.steps, "wall_s": round(wall_s, 1),
                                "abs_rel": round(metrics["abs_rel"], 4), "delta1": round(metrics["delta1"], 4)}
        return wall_s

    budget_s = run("fixed", [f"train.max_steps={args.steps}"])
    scale = budget_s / args.steps / seconds[full]  # what a step really cost against the timed one
    schedule, epoch, steps, spent_s = [], 0, 0, 0.0
    for (h, w), share in zip(SIZES, (0.25, 0.25)):
        epochs = max(1, round(share * budget_s / (scale * per_epoch[f"{h}x{w}"])))
        schedule.append([epoch, [h, w]])
        epoch, steps = epoch + epochs, steps + epochs * steps_per_epoch
        spent_s += epochs * scale * per_epoch[f"{h}x{w}"]
    schedule.append([epoch, list(SIZES[-1])])
    steps += max(0, math.floor((budget_s - spent_s) / (scale * seconds[full])))
    result.update(budget_s=round(budget_s, 1), schedule=schedule)
    run("progressive", [f"train.max_steps={steps}", f"train.resize_schedule={json.dumps(schedule)}"])
    text = json.dumps(result)
    atomic_write_text(out / "result.json", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
