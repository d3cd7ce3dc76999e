"""Mixup/CutMix: soft targets, lambda seen in the clips, identity at prob 0, determinism."""

from __future__ import annotations

import pytest
import torch

from vov3d.engine.mixup import MixupCutmix

N, C, T, H, W = 4, 3, 2, 16, 20
NUM_CLASSES = 5
LABELS = torch.tensor([0, 1, 3, 4])


def _clips() -> torch.Tensor:
    # Clip i is the constant 10 * (i + 1): every mixed value tells where it came from.
    return torch.arange(1, N + 1, dtype=torch.float32).mul(10).view(N, 1, 1, 1, 1).expand(N, C, T, H, W).clone()


def _mixer(seed: int = 0, **kw) -> MixupCutmix:
    args = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, label_smoothing=0.1)
    args.update(kw)
    return MixupCutmix(NUM_CLASSES, generator=torch.Generator().manual_seed(seed), **args)


def _expected_targets(lam: float, smoothing: float) -> torch.Tensor:
    off = smoothing / NUM_CLASSES
    one = torch.full((N, NUM_CLASSES), off)
    one[torch.arange(N), LABELS] = 1 - smoothing + off
    return lam * one + (1 - lam) * one.flip(0)


@pytest.mark.parametrize("seed", range(4))
def test_mixup_lambda_in_clips_and_targets(seed):
    mixer = _mixer(seed, cutmix_alpha=0.0)
    clips = _clips()
    mixed, target = mixer(clips, LABELS)
    lam = mixer.last_lam
    assert mixer.last_mode == "mixup" and 0.0 < lam < 1.0
    values = clips[:, 0, 0, 0, 0]
    expected = lam * values + (1 - lam) * values.flip(0)
    torch.testing.assert_close(mixed, expected.view(N, 1, 1, 1, 1).expand_as(clips))
    torch.testing.assert_close(target, _expected_targets(lam, 0.1))
    torch.testing.assert_close(target.sum(dim=1), torch.ones(N))
    assert torch.equal(clips, _clips())  # the input is left alone


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_box_same_in_every_frame_and_lambda_is_the_area(seed):
    mixer = _mixer(seed, mixup_alpha=0.0, label_smoothing=0.0)
    clips = _clips()
    mixed, target = mixer(clips, LABELS)
    assert mixer.last_mode == "cutmix"
    values = clips[:, 0, 0, 0, 0]
    for i in range(N):
        pasted = mixed[i] != values[i]
        if values[i] == values.flip(0)[i]:
            continue
        assert torch.all(mixed[i][pasted] == values.flip(0)[i])
        box = pasted[0, 0]
        assert torch.equal(pasted, box.expand(C, T, H, W))  # same box in every frame and channel
        rows, cols = box.any(dim=1).nonzero().flatten(), box.any(dim=0).nonzero().flatten()
        if box.any():  # a rectangle: its bounding box is all pasted
            assert box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        lam_from_clip = 1.0 - box.float().mean().item()
        assert lam_from_clip == pytest.approx(mixer.last_lam)
    torch.testing.assert_close(target, _expected_targets(mixer.last_lam, 0.0))
    torch.testing.assert_close(target.sum(dim=1), torch.ones(N))


def test_prob_zero_is_identity():
    mixer = _mixer(prob=0.0, label_smoothing=0.2)
    clips = _clips()
    mixed, target = mixer(clips, LABELS)
    assert mixed is clips and mixer.last_mode == "none" and mixer.last_lam == 1.0
    torch.testing.assert_close(target, _expected_targets(1.0, 0.2))
    # And without smoothing the targets are exactly one-hot.
    _, onehot = _mixer(prob=0.0, label_smoothing=0.0)(clips, LABELS)
    assert torch.equal(onehot, torch.nn.functional.one_hot(LABELS, NUM_CLASSES).float())


def test_deterministic_with_the_generator_and_both_modes_used():
    a, b, c = _mixer(7), _mixer(7), _mixer(8)
    modes = set()
    outputs_c = []
    for _ in range(12):
        xa, ta = a(_clips(), LABELS)
        xb, tb = b(_clips(), LABELS)
        assert torch.equal(xa, xb) and torch.equal(ta, tb)
        outputs_c.append(c(_clips(), LABELS)[1])
        modes.add(a.last_mode)
    assert modes == {"mixup", "cutmix"}
    assert any(not torch.equal(x, y) for x, y in zip(outputs_c, [a(_clips(), LABELS)[1] for _ in range(12)]))


def test_prob_applies_per_batch():
    mixer = _mixer(3, prob=0.5)
    modes = [mixer(_clips(), LABELS) and mixer.last_mode for _ in range(40)]
    assert 5 < modes.count("none") < 35


def test_bad_arguments():
    with pytest.raises(ValueError, match="both 0"):
        MixupCutmix(5, 0.0, 0.0, 1.0, 0.5, 0.0, None)
    with pytest.raises(ValueError, match="MIXUP.PROB=1.5"):
        MixupCutmix(5, 0.8, 1.0, 1.5, 0.5, 0.0, None)
    with pytest.raises(ValueError, match="alphas must be >= 0"):
        MixupCutmix(5, -1.0, 1.0, 1.0, 0.5, 0.0, None)
    with pytest.raises(ValueError, match=r"clips must be \(N, C, T, H, W\)"):
        _mixer()(torch.zeros(4, 3, 8, 8), LABELS)
    with pytest.raises(ValueError, match=r"labels must be \(N,\) with N=4"):
        _mixer()(_clips(), LABELS[:3])
