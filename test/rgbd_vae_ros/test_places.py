"""rgbd_vae_ros.places: keyframes, the recent window, min_score and the cosine score."""

import numpy as np
import pytest

from rgbd_vae_ros.places import Match, PlaceIndex

S = 1_000_000_000  # ns per second


def _one_hot(k, dim=4):
    code = np.zeros(dim)
    code[k] = 1.0
    return code


def test_a_revisit_matches_the_earlier_keyframe_and_nothing_matches_inside_the_recent_window():
    index = PlaceIndex(min_score=0.9, recent_window_s=5.0, keyframe_distance=0.1)
    assert index.add(0, _one_hot(0)) is None  # nothing earlier
    assert index.add(1 * S, _one_hot(0) + 0.01) is None  # the same place, but inside the window
    assert index.add(10 * S, _one_hot(1)) is None  # a new place
    match = index.add(20 * S, _one_hot(0) + 0.02)  # back at the first place
    assert match == Match(query_stamp_ns=20 * S, stamp_ns=0, score=pytest.approx(1.0, abs=1e-3))
    assert index.add(21 * S, _one_hot(2)) is None  # nothing like it anywhere: below min_score


def test_a_keyframe_is_kept_only_when_the_code_moved_more_than_the_distance():
    index = PlaceIndex(min_score=0.0, recent_window_s=0.0, keyframe_distance=0.05)
    for k in range(5):  # a code that hardly moves: one keyframe
        index.add(k * S, np.array([1.0, 0.01 * k, 0.0]))
    assert len(index) == 1
    index.add(5 * S, np.array([0.0, 1.0, 0.0]))  # moved: cosine distance 1 > 0.05
    assert len(index) == 2 and list(index.keyframe_stamps_ns()) == [0, 5 * S]
    # the match is the best keyframe, not the last frame seen
    match = index.add(6 * S, np.array([1.0, 0.02, 0.0]))
    assert match.stamp_ns == 0


def test_standardising_changes_which_keyframe_scores_best():
    # dimension 0 has a large offset shared by every code; only after taking it away do the codes differ
    centre, scale = np.array([10.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    codes = [np.array([10.0, 1.0, 0.0]), np.array([10.0, 0.0, 1.0])]
    query = np.array([10.0, 0.9, 0.1])
    plain, standardised = (PlaceIndex(min_score=-1.0, recent_window_s=1.0, keyframe_distance=0.0),
                           PlaceIndex(min_score=-1.0, recent_window_s=1.0, keyframe_distance=0.0,
                                      centre=centre, scale=scale))
    for index in (plain, standardised):
        for k, code in enumerate(codes):
            index.add(k * S, code)
    assert plain.add(10 * S, query).score > 0.99  # raw cosine: everything looks alike
    match = standardised.add(10 * S, query)
    assert match.stamp_ns == 0 and match.score == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-6)


@pytest.mark.parametrize("code, reason", [(np.zeros(4), "no direction"), (np.array([1.0, np.nan, 0, 0]), "non-finite"),
                                          (np.ones(3), "dimensions"), (np.ones((2, 2)), "vector")])
def test_codes_that_cannot_be_scored_are_refused_with_the_reason(code, reason):
    index = PlaceIndex()
    index.add(0, np.ones(4))
    with pytest.raises(ValueError, match=reason):
        index.add(1, code)
    assert len(index) == 1


def test_a_clock_that_goes_back_is_refused_until_cleared_and_settings_are_checked():
    index = PlaceIndex(recent_window_s=0.0)
    index.add(5 * S, np.ones(2))
    with pytest.raises(ValueError, match="before the last"):
        index.add(4 * S, np.ones(2))
    index.clear()
    assert len(index) == 0 and index.add(4 * S, np.ones(2)) is None
    for kwargs in ({"min_score": 1.5}, {"recent_window_s": -1.0}, {"keyframe_distance": 3.0},
                   {"centre": np.zeros(2), "scale": np.zeros(2)}):
        with pytest.raises(ValueError):
            PlaceIndex(**kwargs)


def test_the_index_grows_past_its_first_allocation_and_still_finds_the_first_keyframe():
    rng = np.random.default_rng(0)
    index = PlaceIndex(min_score=0.999, recent_window_s=1.0, keyframe_distance=0.0)
    first = rng.normal(size=16)
    index.add(0, first)
    for k in range(1, 600):
        index.add(k * S, rng.normal(size=16))
    assert len(index) == 600
    assert index.add(1000 * S, first).stamp_ns == 0
