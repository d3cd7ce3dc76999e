"""The json_stats line format of spec §9.6."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vov3d.engine.json_stats import json_stats_line, test_final_stats


def test_train_epoch_line_exactly():
    stats = {
        "_type": "train_epoch",
        "epoch": "3/256",
        "top1_err": 71.25,
        "loss": 2.1234567,
        "lr": 0.0955,
        "gpu_mem": 3.0,
        "iter": 12,
        "RAM": np.float32(10.5),
    }
    line = json_stats_line(stats)
    assert line == (
        'json_stats: {"RAM": 10.50000, "_type": "train_epoch", "epoch": "3/256", "gpu_mem": 3.00000, '
        '"iter": 12, "loss": 2.12346, "lr": 0.09550, "top1_err": 71.25000}'
    )
    assert json.loads(line[len("json_stats: ") :])["loss"] == pytest.approx(2.12346)


def test_non_finite_numpy_ints_and_nested():
    line = json_stats_line({"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": np.int64(7), "e": [1, "x"], "f": None, "g": True})
    assert line == 'json_stats: {"a": NaN, "b": Infinity, "c": -Infinity, "d": 7, "e": [1, "x"], "f": null, "g": true}'


def test_tiny_floats_round_to_five_decimals():
    assert json_stats_line({"lr": 1e-7, "x": -0.000004}) == 'json_stats: {"lr": 0.00000, "x": -0.00000}'


def test_tensor_value_is_a_clear_error():
    with pytest.raises(TypeError, match="'loss' is a Tensor"):
        json_stats_line({"loss": torch.tensor(1.0)})


def test_final():
    stats = test_final_stats(77.123, 93.0)
    assert stats == {"split": "test_final", "top1_acc": "77.12", "top5_acc": "93.00"}
    assert json_stats_line(stats) == 'json_stats: {"split": "test_final", "top1_acc": "77.12", "top5_acc": "93.00"}'
