"""``rgbd-vae bench transport``: the node's input QoS follows the camera's, and loss is counted."""

import pytest


@pytest.mark.slow
def test_auto_input_qos_matches_each_publisher_and_the_counts_add_up():
    from rgbd_vae_training.bench.transport import CASES, bench_transport, format_rows

    rows = bench_transport(frames=10, width=160, height=120)
    print(format_rows(rows))
    assert [(r["publisher"], r["reliable_input"], r["transport"]) for r in rows] == list(CASES)
    chosen = {(r["publisher"], r["reliable_input"], r["transport"]): r["subscription"] for r in rows}
    assert chosen[("reliable", "auto", "raw")] == "reliable"  # auto matched the reliable camera
    assert chosen[("best_effort", "auto", "raw")] == "best_effort"  # and heard the best-effort one
    assert chosen[("reliable", "false", "raw")] == "best_effort"
    for row in rows:  # how many arrive depends on the machine and DDS; that they are counted does not
        assert 0 <= row["answered"] <= row["received"] <= row["sent"] == 10
        assert row["lost_percent"] == pytest.approx(100 * (10 - row["received"]) / 10)
