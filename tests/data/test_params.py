"""ClipParams: the original's values (spec §7.3) and a clear error for each impossible setting."""

from __future__ import annotations

import pytest

from vov3d.data import KINETICS_PARAMS, SOMETHING_PARAMS, ClipParams


def test_the_recipes_values():
    k = KINETICS_PARAMS
    assert (k.num_frames, k.sampling_rate, k.target_fps) == (16, 5, 30.0)
    assert (k.train_jitter_scales, k.train_crop_size, k.test_crop_size) == ((256, 320), 224, 256)
    assert (k.num_ensemble_views, k.num_spatial_crops, k.num_test_views) == (10, 3, 30)
    assert k.random_flip and not k.inverse_uniform_sample and not k.reverse_input_channel
    assert (k.mean, k.std) == ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
    s = SOMETHING_PARAMS
    assert (s.num_frames, s.sampling_rate, s.num_ensemble_views, s.num_spatial_crops, s.num_test_views) == (16, 8, 2, 3, 6)
    assert s.inverse_uniform_sample and not s.random_flip and s.reverse_input_channel


def test_lists_become_tuples_and_params_are_hashable():
    p = ClipParams(train_jitter_scales=[64, 80], mean=[0.1, 0.2, 0.3], std=[1, 2, 3], train_crop_size=64)
    assert p.train_jitter_scales == (64, 80) and p.mean == (0.1, 0.2, 0.3) and p.std == (1, 2, 3)
    assert hash(p) == hash(ClipParams(train_jitter_scales=(64, 80), mean=(0.1, 0.2, 0.3), std=(1, 2, 3), train_crop_size=64))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_frames": 0}, "num_frames must be a positive int, got 0"),
        ({"sampling_rate": 2.0}, "sampling_rate must be a positive int, got 2.0"),
        ({"test_crop_size": True}, "test_crop_size must be a positive int, got True"),
        ({"num_ensemble_views": -1}, "num_ensemble_views must be a positive int, got -1"),
        ({"target_fps": 0}, "target_fps must be > 0, got 0"),
        ({"train_jitter_scales": (256,)}, r"train_jitter_scales must be \(min, max\), got \(256,\)"),
        ({"train_jitter_scales": (320, 256)}, r"0 < min <= max, got \(320, 256\)"),
        ({"train_jitter_scales": (0, 256), "train_crop_size": 1}, r"0 < min <= max, got \(0, 256\)"),
        ({"train_crop_size": 257}, "train_crop_size 257 is larger than the smallest jitter scale 256"),
        ({"mean": (0.5, 0.5)}, r"mean needs 3 values \(one a channel\), got \(0.5, 0.5\)"),
        ({"std": (0.2, 0.0, 0.2)}, r"std values must be > 0, got \(0.2, 0.0, 0.2\)"),
        ({"num_spatial_crops": 2}, "num_spatial_crops must be 1 or 3, got 2"),
    ],
)
def test_each_impossible_setting_is_named(changes, message):
    with pytest.raises(ValueError, match="^invalid ClipParams: .*" + message):
        ClipParams(**changes)
    with pytest.raises(ValueError, match=message):
        KINETICS_PARAMS.replace(**changes)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValueError) as err:
        ClipParams(num_frames=0, num_spatial_crops=5, target_fps=-1)
    assert str(err.value).count(";") == 2
    for name in ("num_frames", "num_spatial_crops", "target_fps"):
        assert name in str(err.value)


def test_replace_changes_one_field_and_refuses_unknown_ones():
    p = KINETICS_PARAMS.replace(num_frames=8)
    assert p.num_frames == 8 and p.replace(num_frames=16) == KINETICS_PARAMS
    with pytest.raises(TypeError, match=r"unknown ClipParams fields: \['num_frame'\]"):
        KINETICS_PARAMS.replace(num_frame=8)


def test_the_smallest_allowed_values_are_accepted_and_problems_are_joined_by_semicolons():
    small = ClipParams(num_frames=1, sampling_rate=1, target_fps=0.5, train_jitter_scales=(1, 1),
                       train_crop_size=1, test_crop_size=1, num_ensemble_views=1, num_spatial_crops=1)
    assert small.train_jitter_scales == (1, 1) and small.target_fps == 0.5
    with pytest.raises(ValueError) as err:
        ClipParams(num_frames=0, target_fps=0)
    assert str(err.value) == ("invalid ClipParams: num_frames must be a positive int, got 0; "
                              "target_fps must be > 0, got 0")
