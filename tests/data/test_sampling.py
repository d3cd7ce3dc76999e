"""Temporal index formulas against spec §8.2 and §8.3, computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vov3d.data import sampling


def test_clip_length_is_sampling_rate_times_frames_over_target_fps_times_fps():
    assert sampling.clip_length(16, 5, 30, 30) == 80
    assert sampling.clip_length(16, 5, 30, 25) == pytest.approx(16 * 5 / 30 * 25)
    assert sampling.clip_length(32, 2, 30, 60) == 128


def test_test_view_start_is_delta_times_i_over_n():
    # 300 frames, clip of 80: delta = 220, view i of 10 starts at 22·i
    for i in range(10):
        start, end = sampling.clip_start_end(300, 80, i, 10)
        assert start == pytest.approx(22 * i)
        assert end == pytest.approx(22 * i + 79)


def test_random_start_is_uniform_in_zero_delta_and_short_videos_start_at_zero():
    rng = np.random.default_rng(5)
    expected = np.random.default_rng(5).uniform(0, 220)
    start, end = sampling.clip_start_end(300, 80, sampling.RANDOM, 1, rng)
    assert start == pytest.approx(expected) and end == pytest.approx(expected + 79)
    starts = [sampling.clip_start_end(300, 80, -1, 1, np.random.default_rng(s))[0] for s in range(200)]
    assert 0 <= min(starts) < 20 and 200 < max(starts) <= 220
    # a video shorter than the clip: delta = 0
    assert sampling.clip_start_end(50, 80, sampling.RANDOM, 1, rng) == (0.0, 79.0)
    assert sampling.clip_start_end(50, 80, 3, 10) == (0.0, 79.0)


def test_linspace_indices_truncate_and_clamp():
    # start 66, end 145, 16 frames: 66 + i·79/15, truncated
    got = sampling.linspace_indices(66, 145, 16, 300)
    assert got.tolist() == [66, 71, 76, 81, 87, 92, 97, 102, 108, 113, 118, 123, 129, 134, 139, 145]
    assert got.dtype == np.int64
    # clip longer than the video: clamped to the last frame
    got = sampling.linspace_indices(0, 79, 16, 50)
    expected = [min(int(79 * i / 15), 49) for i in range(16)]
    assert got.tolist() == expected
    assert got.max() == 49


def test_kinetics_indices_combine_the_formulas():
    # 25 fps video of 250 frames, 16×5 at 30 fps -> clip of 66.67 frames, delta 183.33; view 9 of 10
    got = sampling.kinetics_indices(250, 25.0, 16, 5, 30.0, 9, 10)
    size = 16 * 5 / 30 * 25
    start = (250 - size) * 9 / 10
    expected = [int(start + (size - 1) * i / 15) for i in range(16)]
    assert got.tolist() == expected


def test_segment_bounds_use_round_half_to_even():
    # L = 6, T = 4: seg = 1.25, boundaries 0, 1.25, 2.5, 3.75, 5 -> 0, 1, 2 (half to even), 4, 5
    assert sampling.segment_bounds(6, 4) == [(0, 1), (1, 2), (2, 4), (4, 5)]
    for L, T in [(40, 16), (100, 16), (37, 8), (3, 16), (1, 4)]:
        seg = (L - 1) / T
        assert sampling.segment_bounds(L, T) == [(round(seg * i), round(seg * (i + 1))) for i in range(T)]


def test_segment_centre_view_matches_the_original_val_formula():
    # (start + end) // 2 of each segment, worked out by hand from the bounds
    assert sampling.segment_indices(6, 4, 0, 1).tolist() == [0, 1, 3, 4]
    # L = 40, T = 16: seg = 2.4375, bounds 0 2 5 7 10 12 15 17 20 22 24 27 29 32 34 37 39
    assert sampling.segment_indices(40, 16, 0, 1).tolist() == [1, 3, 6, 8, 11, 13, 16, 18, 21, 23, 25, 28, 30, 33, 35, 38]
    # L = 2: seg = 1/16, bound i is round(i / 16): 0 up to i = 8 (0.5 rounds to even), then 1;
    # segments 0-7 are (0, 0), segment 8 is (0, 1) with centre 0, segments 9-15 are (1, 1)
    assert sampling.segment_indices(2, 16, 0, 1).tolist() == [0] * 9 + [1] * 7


def test_a_video_without_frames_has_no_segments():
    with pytest.raises(ValueError, match="a video needs at least one frame"):
        sampling.segment_bounds(0, 8)


def test_segment_indices_types_and_defaults():
    assert sampling.segment_indices(6, 4, 0).tolist() == [0, 1, 3, 4]  # one view by default: the centres
    assert sampling.segment_indices(6, 4, 0).dtype == np.int64
    assert sampling.segment_indices(6, 4, sampling.RANDOM, 1, np.random.default_rng(0)).dtype == np.int64
    with pytest.raises(ValueError, match="a random view needs a numpy Generator"):
        sampling.segment_indices(6, 4, sampling.RANDOM)


def test_segment_random_view_is_inclusive_randint():
    bounds = sampling.segment_bounds(6, 4)
    seen = [set() for _ in bounds]
    for seed in range(200):
        got = sampling.segment_indices(6, 4, sampling.RANDOM, 1, np.random.default_rng(seed))
        for i, (s, e) in enumerate(bounds):
            assert s <= got[i] <= e
            seen[i].add(int(got[i]))
    assert seen == [set(range(s, e + 1)) for s, e in bounds]  # both ends reached


def test_segment_test_views_are_deterministic_and_distinct():
    L, T, n = 100, 16, 2
    # seg = 99/16: segments of 6 or 7 frames from the bounds 0 6 12 19 25 31 37 43 50 56 62 68 74 80 87 93 99;
    # view i of 2 sits at start + length * (2i + 1) // 4: +1 for both lengths, +4 (length 6) or +5 (7)
    views = [sampling.segment_indices(L, T, i, n) for i in range(n)]
    assert views[0].tolist() == [1, 7, 13, 20, 26, 32, 38, 44, 51, 57, 63, 69, 75, 81, 88, 94]
    assert views[1].tolist() == [4, 10, 17, 23, 29, 35, 41, 48, 54, 60, 66, 72, 78, 85, 91, 97]
    assert (views[1] > views[0]).all()
    with pytest.raises(ValueError):
        sampling.segment_indices(L, T, 2, 2)


def test_view_of_copy():
    assert [sampling.view_of_copy(k, 3) for k in range(6)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert sampling.view_of_copy(29, 3) == (9, 2)
    # one crop: the centre (the original uses 0 = top/left for Something-Something)
    assert [sampling.view_of_copy(k, 1) for k in range(3)] == [(0, 1), (1, 1), (2, 1)]
    assert math.isclose(sampling.clip_length(1, 1, 1, 1), 1)


def test_view_of_copy_with_two_crops_and_bad_copies():
    assert [sampling.view_of_copy(k, 2) for k in range(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for copy, crops in ((-1, 3), (0, 0), (-2, 0)):
        with pytest.raises(ValueError, match=rf"^bad test copy {copy} / crops {crops}$"):
            sampling.view_of_copy(copy, crops)


def test_indices_are_clamped_to_the_video_and_a_one_frame_video_is_enough():
    assert sampling.linspace_indices(0.0, 7.0, 4, 1).tolist() == [0, 0, 0, 0]
    assert sampling.linspace_indices(-2.0, 10.0, 4, 6).tolist() == [0, 2, 5, 5]  # clamped to [0, 5]
    assert sampling.segment_indices(1, 4, 0).tolist() == [0, 0, 0, 0]
    for call in (lambda: sampling.linspace_indices(0.0, 3.0, 4, 0), lambda: sampling.segment_bounds(0, 8)):
        with pytest.raises(ValueError, match="^a video needs at least one frame$"):
            call()


def test_view_errors_say_what_was_wrong():
    for call in (lambda: sampling.clip_start_end(100, 50.0, sampling.RANDOM, 1),
                 lambda: sampling.segment_indices(6, 4, sampling.RANDOM)):
        with pytest.raises(ValueError, match="^a random view needs a numpy Generator$"):
            call()
    for call in (lambda: sampling.clip_start_end(100, 50.0, 2, 2), lambda: sampling.segment_indices(6, 4, 2, 2)):
        with pytest.raises(ValueError, match="^temporal view 2 out of range for 2 views$"):
            call()
    assert sampling.clip_start_end(100, 50.0, 1, 2) == (25.0, 74.0)  # the last view is in range
