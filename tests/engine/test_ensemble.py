"""The multi-view ensemble (spec §9.5) against hand computations, and its merge across ranks."""

from __future__ import annotations

import pytest
import torch

from vov3d.engine.ensemble import ViewEnsemble

# 3 videos x 2 views, 3 classes. Row i is dataset index i = video * 2 + view.
PROBS = torch.tensor(
    [
        [0.6, 0.3, 0.1],  # video 0 view 0
        [0.2, 0.7, 0.1],  # video 0 view 1 -> sum (0.8, 1.0, 0.2): class 1; max (0.6, 0.7, 0.1): class 1
        [0.1, 0.1, 0.8],  # video 1 view 0
        [0.5, 0.4, 0.1],  # video 1 view 1 -> sum (0.6, 0.5, 0.9): class 2; max (0.5, 0.4, 0.8): class 2
        [0.45, 0.1, 0.45],  # video 2 view 0
        [0.4, 0.0, 0.6],  # video 2 view 1 -> sum (0.85, 0.1, 1.05): class 2; max (0.45, 0.1, 0.6): class 2
    ]
)
SUMS = torch.tensor([[0.8, 1.0, 0.2], [0.6, 0.5, 0.9], [0.85, 0.1, 1.05]], dtype=torch.float64)
MAXES = torch.tensor([[0.6, 0.7, 0.1], [0.5, 0.4, 0.8], [0.45, 0.1, 0.6]], dtype=torch.float64)


def _full(method: str = "sum", **kw) -> ViewEnsemble:
    e = ViewEnsemble(3, 3, 2, method=method, **kw)
    e.add(PROBS[:4], torch.tensor([0, 1, 2, 3]))
    e.add(PROBS[4:], [4, 5])
    return e


def test_sum_by_hand():
    e = _full()
    torch.testing.assert_close(e.scores(), SUMS)
    assert e.counts().tolist() == [2, 2, 2]
    assert e.incomplete() == {}


def test_max_by_hand():
    torch.testing.assert_close(_full("max").scores(), MAXES)


def test_accuracy_in_percent():
    e = _full()
    # Predictions 1, 2, 2. Labels 1, 0, 2: top-1 2/3; top-2: video 1's class 0 is second (0.6 > 0.5).
    acc = e.accuracy(torch.tensor([1, 0, 2]), ks=(1, 2))
    assert acc == pytest.approx({"top1_acc": 200 / 3, "top2_acc": 100.0})
    assert e.accuracy([0, 1, 1], ks=(1,)) == {"top1_acc": 0.0}
    assert set(e.accuracy([1, 0, 2])) == {"top1_acc", "top5_acc"}


def test_duplicates_are_ignored():
    e = _full()
    e.add(PROBS[[0, 3]] * 10, torch.tensor([0, 3]))  # distributed padding repeats indices
    torch.testing.assert_close(e.scores(), SUMS)
    assert e.counts().tolist() == [2, 2, 2]
    # Within one batch too.
    e2 = ViewEnsemble(3, 3, 2)
    e2.add(PROBS[[0, 0, 1]], [0, 0, 1])
    torch.testing.assert_close(e2.scores()[0], SUMS[0])


def test_missing_and_failed_views_are_reported():
    e = ViewEnsemble(3, 3, 2)
    e.add(PROBS[[0, 1, 2, 4]], [0, 1, 2, 4], errors=["", None, "", "cannot decode frame 3 of b.mp4"])
    assert e.counts().tolist() == [2, 1, 0]
    assert e.incomplete() == {
        1: {"added": 1, "expected": 2, "missing": [1], "failed": {}},
        2: {"added": 0, "expected": 2, "missing": [1], "failed": {0: "cannot decode frame 3 of b.mp4"}},
    }
    # The failed view's scores were not used.
    torch.testing.assert_close(e.scores()[2], torch.zeros(3, dtype=torch.float64))
    # A later good copy of a failed view is added and clears the failure.
    e.add(PROBS[[4, 5, 3]], [4, 5, 3])
    assert e.incomplete() == {}
    torch.testing.assert_close(e.scores(), SUMS)


def test_state_round_trip():
    e = ViewEnsemble(3, 3, 2)
    e.add(PROBS[[0, 1, 2]], [0, 1, 2], errors=["", "", "bad"])
    state = e.merge_state()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    fresh = ViewEnsemble(3, 3, 2)
    fresh.load_state(state)
    torch.testing.assert_close(fresh.scores(), e.scores())
    assert fresh.counts().tolist() == [2, 0, 0]
    assert fresh.incomplete()[1] == {"added": 0, "expected": 2, "missing": [1], "failed": {0: ""}}


@pytest.mark.parametrize("method", ["sum", "max"])
def test_two_ranks_disjoint_halves_merge_to_the_single_result(method):
    ranks = [ViewEnsemble(3, 3, 2, method=method, keep_views=False) for _ in range(2)]
    for rank, e in enumerate(ranks):  # DistributedSampler without padding: rank r gets r, r+2, ...
        idx = list(range(rank, 6, 2))
        e.add(PROBS[idx], idx)
    states = [e.merge_state() for e in ranks]
    for e in ranks:
        for s in states:  # every rank loads every state, its own included
            e.load_state(s)
        torch.testing.assert_close(e.scores(), SUMS if method == "sum" else MAXES)
        assert e.counts().tolist() == [2, 2, 2]


def _padded_shards(num_items: int, world: int) -> list[list[int]]:
    """DistributedSampler(shuffle=False) order: the list padded with its own first items, dealt round-robin."""
    total = -(-num_items // world) * world
    order = list(range(num_items)) + list(range(total - num_items))
    return [order[r::world] for r in range(world)]


@pytest.mark.parametrize("world", [4, 5])
def test_padded_ranks_merge_exactly_with_kept_views(world):
    # 6 items over 4 or 5 ranks: padding copies items 0.. onto the last ranks, overlapping partly.
    shards = _padded_shards(6, world)
    assert sum(len(s) for s in shards) > 6
    ranks = [ViewEnsemble(3, 3, 2, keep_views=True) for _ in range(world)]
    for e, idx in zip(ranks, shards):
        e.add(PROBS[idx], idx)
    states = [e.merge_state() for e in ranks]
    for e in ranks:
        for s in states:
            e.load_state(s)
        torch.testing.assert_close(e.scores(), SUMS, rtol=0, atol=1e-7)
        assert e.counts().tolist() == [2, 2, 2]


def _sums_only(indices: list[int], videos: int = 3, views: int = 2) -> ViewEnsemble:
    e = ViewEnsemble(videos, 3, views, keep_views=False)
    e.add(PROBS[indices], indices)
    return e


def test_sums_merge_contained_sets_exactly():
    a = _sums_only([0])
    a.load_state(_sums_only([0, 1, 2]).merge_state())  # video 0: {0} here within {0, 1} there: replaced
    torch.testing.assert_close(a.scores()[:2], torch.stack([SUMS[0], PROBS[2].double()]))
    b = _sums_only([0, 1, 3])
    b.load_state(_sums_only([1, 2]).merge_state())  # video 0: {0} there within {0, 1} here; video 1 disjoint
    torch.testing.assert_close(b.scores()[:2], SUMS[:2])
    assert b.counts().tolist() == [2, 2, 0]


def test_sums_merge_of_a_partial_overlap_is_an_error():
    p = _sums_only([0, 1], videos=2, views=3)
    q = _sums_only([1, 2], videos=2, views=3)
    with pytest.raises(ValueError, match=r"1 videos \(e.g. \[0\]\).*keep_views=True"):
        p.load_state(q.merge_state())


def test_loading_sums_into_a_kept_views_ensemble_falls_back_to_sums():
    a = ViewEnsemble(3, 3, 2, keep_views=True)
    a.add(PROBS[[0]], [0])
    a.load_state(_sums_only([1]).merge_state())
    state = a.merge_state()
    assert "scores" in state and "view_indices" not in state
    torch.testing.assert_close(state["scores"][0], SUMS[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="'mean' is unknown: expected one of sum, max"):
        ViewEnsemble(3, 3, 2, method="mean")
    with pytest.raises(ValueError, match="views_per_video must be >= 1"):
        ViewEnsemble(3, 3, 0)
    e = ViewEnsemble(3, 3, 2)
    with pytest.raises(ValueError, match=r"dataset index 6 is outside 3 videos x 2 views \(indices 0..5\)"):
        e.add(PROBS[:1], [6])
    with pytest.raises(ValueError, match=r"scores must be \(B, 3\)"):
        e.add(torch.zeros(1, 4), [0])
    with pytest.raises(ValueError, match="2 score rows but 1 indices"):
        e.add(PROBS[:2], [0])
    with pytest.raises(ValueError, match="2 labels for 3 videos"):
        e.accuracy([0, 1])
    with pytest.raises(ValueError, match="cannot merge"):
        e.load_state(ViewEnsemble(4, 3, 2).merge_state())
