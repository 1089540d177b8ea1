"""Opt-in IR shadows in the synthetic NYU raw frames: no reading in a band left of foreground edges,
as wide as the projector's disparity step; nothing changes without the option."""

import json

import numpy as np
import pytest

from rgbd_vae_training.synth.generate import IR_PROJECTOR_BASELINE_M, cast_ir_shadows, generate_scene


def test_a_box_before_a_wall_shadows_a_band_left_of_it_as_wide_as_the_disparity_step():
    fx = 100.0
    depth = np.full((4, 120), 3.0, dtype=np.float32)
    depth[:, 60:80] = 1.0  # a box 2 m in front of the wall
    shadowed = cast_ir_shadows(depth, fx)
    step = fx * IR_PROJECTOR_BASELINE_M * (1 / 1.0 - 1 / 3.0)  # 5 px
    holes = np.flatnonzero(np.isnan(shadowed[0]))
    assert holes.min() == 60 - int(np.floor(step - 0.5)) and holes.max() == 59  # left of the box, to its edge
    assert np.all(np.isnan(shadowed) == np.isnan(shadowed[0])[None])  # the same on every row
    keep = ~np.isnan(shadowed)
    np.testing.assert_array_equal(shadowed[keep], depth[keep])  # elsewhere untouched, the box itself lit
    # a plain wall (also a slanted one) casts no shadow on itself; no reading stays no reading
    slanted = np.linspace(2.0, 4.0, 120, dtype=np.float32)[None].repeat(3, 0)
    slanted[:, :5] = np.nan
    out = cast_ir_shadows(slanted, fx)
    assert np.isnan(out[:, :5]).all() and not np.isnan(out[:, 5:]).any()


@pytest.mark.slow
def test_shadows_are_off_unless_asked_for_and_change_only_the_ir_depth():
    plain = next(generate_scene(11, 2, 1, 160, 120))
    shadowed = next(generate_scene(11, 2, 1, 160, 120, ir_shadows=True))
    assert not np.isnan(plain.depth_ir_m).any()
    holes = np.isnan(shadowed.depth_ir_m)
    assert 0 < holes.mean() < 0.1
    np.testing.assert_array_equal(shadowed.depth_ir_m[~holes], plain.depth_ir_m[~holes])
    np.testing.assert_array_equal(shadowed.rgb_u8, plain.rgb_u8)


@pytest.mark.slow
def test_synth_writes_shadows_into_nyu_raw_only_and_says_so_in_its_marker(tmp_path, capsys):
    from rgbd_vae_training.cli import main as cli

    args = ["synth", "--scenes", "1", "--frames", "1", "--width", "64", "--height", "48", "--seed", "11"]
    assert cli([*args, "--layout", "nyu-raw", "--out", str(tmp_path / "raw"), "--ir-shadows"]) == 0
    assert json.loads((tmp_path / "raw" / "synth.json").read_text())["ir_shadows"] is True
    assert cli([*args, "--layout", "nyu-raw", "--out", str(tmp_path / "plain")]) == 0
    assert "ir_shadows" not in json.loads((tmp_path / "plain" / "synth.json").read_text())
    with pytest.raises(SystemExit) as usage:
        cli([*args, "--layout", "tum", "--out", str(tmp_path / "tum"), "--ir-shadows"])
    assert usage.value.code == 2  # a usage error
    assert "--ir-shadows is for --layout nyu-raw" in capsys.readouterr().err
