"""Params and GFLOPs per view as the original counts them (spec §6), within 0.5% of the issue's table."""

from __future__ import annotations

import json

import pytest

import vov3d
from vov3d.cli import main

TABLE = [  # model, classes, frames, size, params (M) or None, GFLOPs
    ("vov3d_m", 400, 16, 224, 3.80, 4.42),
    ("vov3d_m", 174, 16, 256, 3.34, 5.77),
    ("vov3d_m", 174, 32, 256, None, 11.54),
    ("vov3d_m_v2", 400, 16, 224, 3.67, 4.92),
    ("vov3d_l", 400, 16, 224, 6.30, 9.31),
    ("vov3d_l", 174, 16, 256, 5.83, 12.16),
    ("vov3d_l", 174, 32, 256, None, 24.31),
    ("x3d_m", 400, 16, 256, 3.79, 6.18),
    ("x3d_l", 174, 16, 224, 5.69, 9.16),
    ("x3d_l", 400, 16, 356, None, 24.76),
]


@pytest.mark.parametrize("name, classes, frames, size, params, gflops", TABLE)
def test_complexity_table(name, classes, frames, size, params, gflops):
    stats = vov3d.model_complexity(name, num_classes=classes, frames=frames, size=size)
    assert stats["gflops"] == pytest.approx(gflops, rel=0.005)
    if params is not None:
        assert stats["params"] / 1e6 == pytest.approx(params, rel=0.005)


def test_original_head_at_a_larger_test_crop_counts_the_extra_positions():
    # spec §6: VoV3D-M (April 2021) with TRAIN_CROP 224 tested at 256 gives 6.426 vs 6.421.
    plain = vov3d.model_complexity("vov3d_m_v2", frames=16, size=256)["gflops"]
    original = vov3d.model_complexity("vov3d_m_v2", frames=16, size=256, train_crop_size=224)["gflops"]
    assert plain == pytest.approx(6.421, abs=0.001)
    assert original == pytest.approx(6.426, abs=0.001)


def test_flops_counter_runs_on_a_real_model_too():
    model = vov3d.create_model("vov3d_m", num_classes=174)
    assert vov3d.count_gmacs(model, frames=4, size=64) == pytest.approx(5.77 * 4 / 16 * (64 / 256) ** 2, rel=0.02)
    assert model.training  # the mode is restored


def test_cli_json(capsys):
    assert main(["flops", "vov3d_m", "--num-classes", "174", "--frames", "16", "--size", "256", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["params"] == 3_337_374
    assert stats["gflops"] == pytest.approx(5.77, rel=0.005)


def test_cli_unknown_model_lists_the_available_ones(capsys):
    assert main(["flops", "vov3d_xxl"]) == 2
    assert "available models: vov3d_l, vov3d_m" in capsys.readouterr().err
