"""LRSchedule against the formulas of spec §9.2, written out here independently."""

from __future__ import annotations

import math

import pytest

from vov3d.engine.lr_schedule import LRSchedule


def k400_cosine(e: float) -> float:
    return 0.0 + (0.1 - 0.0) * (math.cos(math.pi * e / 256) + 1.0) / 2.0


def test_k400_cosine_with_warmup():
    """Kinetics VoV3D: BASE 0.1, 256 epochs, 35 warm-up epochs from 0.01 to cosine(35) ~ 0.0955."""
    s = LRSchedule("cosine", base_lr=0.1, max_epoch=256, warmup_epochs=35, warmup_start_lr=0.01)
    end = k400_cosine(35)
    assert end == pytest.approx(0.0955, abs=5e-5)
    assert s(0) == pytest.approx(0.01)
    assert s(17.5) == pytest.approx(0.01 + 17.5 * (end - 0.01) / 35)
    assert s(34.999) == pytest.approx(0.01 + 34.999 * (end - 0.01) / 35)
    # Warm-up ends at the policy's value, not BASE_LR: continuous at 35.
    assert s(35) == pytest.approx(end)
    assert s(34.9999) == pytest.approx(end, abs=1e-6)
    assert s(35) < 0.1
    for e in (35.5, 100.25, 128, 200.75, 255.99):
        assert s(e) == pytest.approx(k400_cosine(e))
    assert s(128) == pytest.approx(0.05)
    assert s(256) == pytest.approx(0.0, abs=1e-12)


def test_cosine_end_lr_and_no_warmup():
    s = LRSchedule("cosine", base_lr=0.2, max_epoch=10, cosine_end_lr=0.02)
    assert s(0) == pytest.approx(0.2)
    assert s(5) == pytest.approx(0.02 + 0.18 * 0.5)
    assert s(2.5) == pytest.approx(0.02 + 0.18 * (math.cos(math.pi / 4) + 1) / 2)
    assert s(10) == pytest.approx(0.02)


def test_ss_scratch_one_epoch_warmup():
    """SS scratch: 100 epochs, 1 warm-up epoch from 0.01 (fractional epochs inside it)."""
    s = LRSchedule("cosine", base_lr=0.1, max_epoch=100, warmup_epochs=1, warmup_start_lr=0.01)
    end = 0.05 * (math.cos(math.pi / 100) + 1)
    for i in range(10):
        e = i / 10
        assert s(e) == pytest.approx(0.01 + e * (end - 0.01))
    assert s(1) == pytest.approx(end)


def test_finetune_steps_with_relative_lrs():
    """Finetune: steps [0,35,45], lrs [1,0.1,0.01], BASE 0.05, 50 epochs, 0.19 epoch warm-up from 1e-4."""
    s = LRSchedule(
        "steps_with_relative_lrs",
        base_lr=0.05,
        max_epoch=50,
        steps=[0, 35, 45],
        lrs=[1, 0.1, 0.01],
        warmup_epochs=0.19,
        warmup_start_lr=1e-4,
    )
    assert s(0) == pytest.approx(1e-4)
    assert s(0.1) == pytest.approx(1e-4 + 0.1 * (0.05 - 1e-4) / 0.19)
    assert s(0.19) == pytest.approx(0.05)
    assert s(1) == pytest.approx(0.05)
    # Step boundaries: the new rate applies from the step itself.
    assert s(34.999) == pytest.approx(0.05)
    assert s(35) == pytest.approx(0.005)
    assert s(44.99) == pytest.approx(0.005)
    assert s(45) == pytest.approx(0.0005)
    assert s(49.99) == pytest.approx(0.0005)
    assert s(50) == pytest.approx(0.0005)


def test_warmup_end_uses_the_step_value_at_warmup_end():
    # A warm-up that ends inside the second step ends at that step's value.
    s = LRSchedule("steps_with_relative_lrs", base_lr=1.0, max_epoch=10, steps=(0, 2), lrs=(1, 0.5), warmup_epochs=4)
    assert s(2) == pytest.approx(0.0 + 2 * 0.5 / 4)
    assert s(4) == pytest.approx(0.5)


def test_extra_relative_rates_are_unused():
    s = LRSchedule("steps_with_relative_lrs", base_lr=0.1, max_epoch=50, steps=(0, 35, 45), lrs=(1, 0.1, 0.01, 0.001))
    assert s(49) == pytest.approx(0.001)


def test_shortened_run_of_a_full_recipe():
    """MAX_EPOCH 2 on the finetune or K400 recipe: steps and warm-up beyond the run, as the original allows."""
    steps = LRSchedule("steps_with_relative_lrs", base_lr=0.05, max_epoch=2, steps=(0, 35, 45), lrs=(1, 0.1, 0.01))
    assert steps(1.5) == pytest.approx(0.05)
    cos = LRSchedule("cosine", base_lr=0.1, max_epoch=2, warmup_epochs=35, warmup_start_lr=0.01)
    end = 0.05 * (math.cos(math.pi * 35 / 2) + 1)
    assert cos(1.0) == pytest.approx(0.01 + 1.0 * (end - 0.01) / 35)


def test_lists_are_stored_as_tuples():
    s = LRSchedule("steps_with_relative_lrs", base_lr=0.1, max_epoch=5, steps=[0, 2], lrs=[1, 0.1])
    assert s.steps == (0.0, 2.0) and s.lrs == (1.0, 0.1)
    hash(s)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(policy="linear", base_lr=0.1, max_epoch=10), "unknown"),
        (dict(policy="cosine", base_lr=0.1, max_epoch=0), "max_epoch must be > 0"),
        (dict(policy="cosine", base_lr=0.1, max_epoch=-3), "max_epoch must be > 0"),
        (dict(policy="cosine", base_lr=-0.1, max_epoch=10), "base_lr"),
        (dict(policy="cosine", base_lr=0.1, max_epoch=10, warmup_epochs=-1), "warmup_epochs"),
        (dict(policy="steps_with_relative_lrs", base_lr=0.1, max_epoch=50, steps=(0, 35, 45), lrs=(1, 0.1)), "one relative rate per step"),
        (dict(policy="steps_with_relative_lrs", base_lr=0.1, max_epoch=50, steps=(5, 35), lrs=(1, 0.1)), "start with 0"),
        (dict(policy="steps_with_relative_lrs", base_lr=0.1, max_epoch=50, steps=(), lrs=()), "start with 0"),
        (dict(policy="steps_with_relative_lrs", base_lr=0.1, max_epoch=50, steps=(0, 40, 35), lrs=(1, 0.1, 0.01)), "increasing"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LRSchedule(**kwargs)


def test_unknown_policy_names_the_choices():
    with pytest.raises(ValueError, match="cosine, steps_with_relative_lrs"):
        LRSchedule("Cosine", base_lr=0.1, max_epoch=10)


def test_negative_epoch():
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        LRSchedule("cosine", base_lr=0.1, max_epoch=10)(-0.5)
