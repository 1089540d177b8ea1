"""What the generator varies (training/synth/style.py): scenes stay inside their style's ranges, and
the held-out ``unseen`` style draws every varied setting outside the ranges of ``train`` and ``varied``."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rgbd_vae_training.synth.generate import generate_scene, write_nyu_mat
from rgbd_vae_training.synth.scene import BOX, FIXTURE_THICKNESS_M, ROOM_SURFACES, camera_pose, make_scene
from rgbd_vae_training.synth.style import STYLES, TRAIN, UNSEEN, VARIED, draw, style_named

RGBD_VAE = Path(sys.executable).with_name("rgbd-vae")
RANGE_FIELDS = [f.name for f in dataclasses.fields(TRAIN) if isinstance(getattr(TRAIN, f.name), tuple)
                and isinstance(getattr(TRAIN, f.name)[0], tuple)]


def _inside(value: float, ranges, slack: float = 1e-9) -> bool:
    return any(lo - slack <= value <= hi + slack for lo, hi in ranges)


def _overlap(a, b) -> bool:
    return any(lo_a <= hi_b and lo_b <= hi_a for lo_a, hi_a in a for lo_b, hi_b in b)


@pytest.mark.parametrize("training", [TRAIN, VARIED], ids=["train", "varied"])
def test_every_unseen_range_lies_outside_the_training_ranges(training):
    assert len(RANGE_FIELDS) >= 12
    for name in RANGE_FIELDS:
        assert not _overlap(getattr(UNSEEN, name), getattr(training, name)), name
    for name in ("furniture", "wall_fixtures", "lights"):
        (lo_u, hi_u), (lo_t, hi_t) = getattr(UNSEEN, name), getattr(training, name)
        assert hi_u < lo_t or lo_u > hi_t, name
    assert not set(UNSEEN.patterns) & set(training.patterns)


def test_a_value_is_drawn_from_the_union_of_its_intervals_in_proportion_to_their_lengths():
    rng = np.random.default_rng(0)
    values = np.array([draw(rng, ((0.0, 1.0), (5.0, 8.0))) for _ in range(4000)])
    assert np.all(((values >= 0) & (values <= 1)) | ((values >= 5) & (values <= 8)))
    assert 0.22 < np.mean(values <= 1) < 0.28  # 1 of 4 units of length
    assert draw(rng, ((1.35, 1.35),)) == 1.35


@pytest.mark.slow
@pytest.mark.parametrize("style", ["train", "varied", "unseen"])
def test_scenes_keep_the_camera_height_pitch_and_roll_of_their_style(style):
    ranges = style_named(style)
    for seed in range(30):
        scene = make_scene(np.random.default_rng(seed), ranges)
        assert _inside(abs(np.degrees(scene.camera_roll_rad)), ranges.camera_roll_deg)
        assert _inside(np.degrees(scene.camera_pitch_rad), ranges.camera_pitch_deg)
        assert _inside(scene.room[0], ranges.room_side_m) and _inside(scene.room[2], ranges.room_height_m)
        assert _inside(scene.rgb_noise, ranges.rgb_noise) and _inside(scene.exposure, ranges.exposure)
        materials = scene.room_materials + [p.material for p in scene.primitives]
        assert {m.pattern for m in materials if m.pattern != "plain" or "plain" in ranges.patterns} \
            <= set(ranges.patterns)
        for t in np.linspace(0, 20, 41):
            rotation, position = camera_pose(scene, t)
            height = position[2]
            assert 0.15 < height < scene.room[2] - 0.15  # inside the room, under the ceiling
            pitch = np.degrees(np.arcsin(rotation[2, 2]))  # the optical axis' elevation
            lo, hi = min(r[0] for r in ranges.camera_pitch_deg), max(r[1] for r in ranges.camera_pitch_deg)
            assert lo - ranges.pitch_wander_deg - 1e-6 <= pitch <= hi + ranges.pitch_wander_deg + 1e-6
            np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
            assert np.linalg.det(rotation) == pytest.approx(1.0)


@pytest.mark.slow
def test_varied_camera_heights_span_robot_to_hand_held_and_unseen_ones_lie_outside():
    heights = {s: np.array([make_scene(np.random.default_rng(k), style_named(s)).camera_height_m for k in range(60)])
               for s in ("varied", "unseen")}
    assert heights["varied"].min() < 0.6 and heights["varied"].max() > 1.4  # a low robot and a hand-held camera
    (low, high), = VARIED.camera_height_m
    assert np.all((heights["unseen"] < low) | (heights["unseen"] > high))


def test_furniture_stands_against_walls_square_to_them_and_fixtures_sit_on_the_walls():
    walled, fixtures = 0, 0
    for seed in range(20):
        scene = make_scene(np.random.default_rng(seed), VARIED)
        for p in scene.primitives:
            if p.kind != BOX:
                continue
            if FIXTURE_THICKNESS_M in p.size:  # a door, window or picture: its back on a wall
                fixtures += 1
                half = p.size[:2] / 2
                assert np.any(np.isclose(p.centre[:2] - half, 0) | np.isclose(p.centre[:2] + half, scene.room[:2]))
            elif p.yaw in (0.0, np.pi / 2):
                half = p.size[:2] / 2 if p.yaw == 0.0 else p.size[1::-1] / 2
                gap = np.minimum(p.centre[:2] - half, scene.room[:2] - (p.centre[:2] + half))
                if np.isclose(gap.min(), 0.02):
                    walled += 1
                assert gap.min() > 0  # inside the room
    assert walled >= 10 and fixtures >= 20


def test_the_varied_style_puts_darker_floors_and_lighter_alike_walls_under_a_pale_ceiling():
    for seed in range(10):
        floor, ceiling, *walls = make_scene(np.random.default_rng(seed), VARIED).room_materials
        assert ROOM_SURFACES == 2 + len(walls)
        assert floor.colour.mean() < min(w.colour.mean() for w in walls) + 0.2
        assert ceiling.colour.min() >= 0.6 and ceiling.pattern == "plain"
        assert sum(w is walls[0] for w in walls) >= 3  # painted alike, one accent wall at most


def test_unseen_frames_look_different_from_training_frames():
    def frames(style):
        return [next(generate_scene(3, s, 1, 64, 48, synchronised=True, style=style)) for s in range(6)]

    train, varied, unseen = frames("train"), frames("varied"), frames("unseen")
    assert not any(np.array_equal(a.rgb_u8, b.rgb_u8) for a, b in zip(train, unseen))
    assert not any(np.array_equal(a.rgb_u8, b.rgb_u8) for a, b in zip(varied, unseen))
    for f in train + varied + unseen:
        assert np.all(np.isfinite(f.depth_rgb_m) & (f.depth_rgb_m > 0.05))  # the camera is inside the room


def test_an_unknown_style_is_refused_in_one_sentence_and_the_marker_records_a_held_out_style(tmp_path):
    with pytest.raises(ValueError, match="style 'odd' is unknown; expected one of train, varied, unseen"):
        style_named("odd")
    write_nyu_mat(tmp_path / "unseen", scenes=1, frames=1, width=32, height=24, style="unseen")
    assert json.loads((tmp_path / "unseen" / "synth.json").read_text())["style"] == "unseen"
    write_nyu_mat(tmp_path / "train", scenes=1, frames=1, width=32, height=24)
    assert "style" not in json.loads((tmp_path / "train" / "synth.json").read_text())
    assert set(STYLES) == {"train", "varied", "unseen"}


@pytest.mark.slow
def test_synth_style_option_writes_held_out_frames_and_is_refused_for_a_walk(tmp_path):
    ok = subprocess.run([str(RGBD_VAE), "synth", "--layout", "tum", "--scenes", "1", "--frames", "1", "--width", "32",
                         "--height", "24", "--style", "unseen", "--out", str(tmp_path / "tum")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "tum" / "synth.json").read_text())["style"] == "unseen"
    walk = subprocess.run([str(RGBD_VAE), "synth", "--walk", "revisit", "--rooms", "1", "--frames-per-visit", "1",
                           "--style", "unseen", "--out", str(tmp_path / "walk")], capture_output=True, text=True)
    assert walk.returncode == 2 and "--style is for --layout" in walk.stderr  # a usage error


# Files written by the generator before issue 15 item 6 (commit c2d549d), write_nyu_raw(seed=11, 64x48):
# the default style draws its scenes as it did, so data sets, tests and numbers made with it stay.
BEFORE_SHA256 = {
    "d-1300001000.000000-298846720.pgm": "a9e6a7736ecb45bfc14f73b55f01c807b45d16f22daba186451f2cfa5fa477e8",
    "r-1300001000.040152-298886872.ppm": "6bc77bc327e0f64c9f152486e179c37101da3c8b7b8365d11620e29527e2b530",
}


def test_the_train_style_writes_the_bytes_of_the_generator_before_the_styles(tmp_path):
    import hashlib

    from rgbd_vae_training.synth.generate import write_nyu_raw

    write_nyu_raw(tmp_path, scenes=2, frames=2, seed=11, width=64, height=48)
    room = tmp_path / "synth_room_0001"
    assert {name: hashlib.sha256((room / name).read_bytes()).hexdigest() for name in BEFORE_SHA256} == BEFORE_SHA256
