"""``rgbd-vae bench pipeline`` measures the real node: outputs, FPS, latency and drops."""

import pytest

from rgbd_vae_training.bench.pipeline import bench_pipeline, format_rows


@pytest.mark.slow
def test_bench_pipeline_reports_fps_latency_and_drops(pipeline_models):
    rows = bench_pipeline(["onnxruntime"], models=pipeline_models, rate_hz=30, seconds=2.0, width=160, height=120)
    (row,) = rows
    # What it measures depends on the machine; that it measures is what is checked.
    assert row["backend"] == "onnxruntime" and row["sent"] >= 10
    assert row["outputs"] >= 1 and row["fps"] >= 0
    assert 0 < row["latency_median_ms"] <= row["latency_p95_ms"] < 5000
    assert row["received"] <= row["sent"] and row["dropped"] >= 0
    assert "onnxruntime" in format_rows(rows)
