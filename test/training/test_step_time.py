"""bench step_time: one row per config, with the config's own model, batch and input size."""

import pytest

from rgbd_vae_ros.models import build_model
from rgbd_vae_training.bench.step_time import add_budget, step_times
from rgbd_vae_training.train.config import load_config


@pytest.mark.slow
def test_rows_describe_each_configs_own_step():
    rows = step_times(["tiny_depth", "tiny_fast_depth"], runs=2,
                      overrides=["model.input_height=32", "model.input_width=64", "train.batch_size=2"])
    assert [row["config"] for row in rows] == ["tiny_depth", "tiny_fast_depth"]
    for row in rows:
        config = load_config(row["config"], ["model.input_height=32", "model.input_width=64"])
        assert row["model"] == config.model_name
        assert row["input"] == [2, 3, 32, 64]
        assert row["parameters"] == sum(p.numel() for p in build_model(config.model_name, config.model).parameters())
        assert row["runs"] == 2
        assert 0 < row["wall_fastest_ms"] <= row["wall_median_ms"]
        assert 0 < row["cpu_fastest_ms"] <= row["cpu_median_ms"]


def test_runs_must_be_positive():
    with pytest.raises(ValueError, match="runs must be 1 or more"):
        step_times(["tiny_depth"], runs=0)


def test_budget_gives_each_config_the_first_configs_cpu_time():
    rows = add_budget([{"config": "a", "cpu_fastest_ms": 200.0}, {"config": "b", "cpu_fastest_ms": 80.0}], 600)
    assert [(r["budget_s"], r["steps_in_budget"]) for r in rows] == [(120.0, 600), (120.0, 1500)]
