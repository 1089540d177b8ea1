"""``rgbd-vae bench pipeline`` measures the stages alone and the real node side by side: FPS,
latency, drops and the two ratios of SPEC §10, building the models it needs when none are given."""

import pytest

from rgbd_vae_training.bench.pipeline import bench_pipeline, format_rows


@pytest.mark.slow
def test_bench_pipeline_reports_stages_and_node_side_by_side_with_the_ratios():
    rows = bench_pipeline(["onnxruntime"], rate_hz=30, seconds=2.0, width=160, height=120,
                          model_sets=(("tiny", "tiny_depth", "tiny_vae"),), stages_s=0.5)
    (row,) = rows
    # What it measures depends on the machine; that it measures, and derives the ratios, is checked.
    assert row["models"] == "tiny" and row["backend"] == "onnxruntime" and row["sent"] >= 10
    assert row["stages_ms"] > 0 and row["stages_fps"] > 0
    assert row["outputs"] >= 1 and row["fps"] >= 0
    assert 0 < row["latency_median_ms"] <= row["latency_p95_ms"] < 5000
    assert row["received"] <= row["sent"] and row["dropped"] >= 0
    assert row["fps_ratio"] == pytest.approx(row["fps"] / min(row["stages_fps"], 30))
    assert row["latency_ratio"] == pytest.approx(row["latency_median_ms"] / row["stages_ms"])
    table = format_rows(rows)
    assert "onnxruntime" in table and "tiny" in table and "FPS ratio" in table


@pytest.mark.slow
def test_bench_pipeline_on_a_bag_reports_the_stages_on_its_first_frame_beside_the_replay(sequence_bag,
                                                                                         pipeline_models):
    from rgbd_vae_training.bench.pipeline import bench_pipeline_bag

    (row,) = bench_pipeline_bag(["onnxruntime"], sequence_bag, models=pipeline_models, seconds=1.0, stages_s=0.5)
    assert row["models"] == "given" and row["input"] == "160x120 bag" and row["sent"] >= 10
    assert row["stages_ms"] > 0 and row["outputs"] >= 1 and row["dropped"] == row["sent"] - row["outputs"]
    assert row["latency_median_ms"] > 0 and row["end_to_end_median_ms"] > 0
    assert row["fps_ratio"] == pytest.approx(row["fps"] / min(row["stages_fps"], row["rate_hz"]))
