"""The multi-view test ensemble of the original's ``TestMeter`` (spec §9.5), with exact view accounting.

Dataset index ``i`` is view ``i % views_per_video`` of video ``i // views_per_video``. A video's
score is the sum (or the element-wise max) of its views' softmax probabilities. Unlike the original,
which only warns when a video did not get exactly ``views_per_video`` clips, every view is tracked:
a view added twice (distributed padding) counts once, and a missing or failed view is reported.

Across processes, each rank's :meth:`ViewEnsemble.merge_state` is all-gathered and loaded with
:meth:`ViewEnsemble.load_state`; with per-view rows kept (the default under ``torch.distributed``)
the merge is exact even when the sampler padded some ranks with copies of other ranks' views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vov3d.engine.metrics import topk_correct

METHODS = ("sum", "max")
MISSING, ADDED, FAILED = 0, 1, 2


class ViewEnsemble:
    """Per-video ensemble of view scores (spec §9.5).

    ``add`` takes the eval-mode model outputs, i.e. probabilities (the head applies softmax in
    eval, spec §4); they are not softmaxed again. Scores start at zero for both methods, as in the
    original, so a video without any view has all-zero scores.

    ``keep_views`` keeps every added view's scores (float32) for an exact :meth:`load_state`; by
    default it is on when ``torch.distributed`` runs with more than one process, and off otherwise
    (a single process never merges, and K400's 30-view test would hold about 1 GB of them).
    """

    def __init__(
        self,
        num_videos: int,
        num_classes: int,
        views_per_video: int,
        method: str = "sum",
        keep_views: bool | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"ensemble method {method!r} is unknown: expected one of {', '.join(METHODS)} (DATA.ENSEMBLE_METHOD)")
        for name, value in (("num_videos", num_videos), ("num_classes", num_classes), ("views_per_video", views_per_video)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.num_videos = num_videos
        self.num_classes = num_classes
        self.views_per_video = views_per_video
        self.method = method
        self._scores = torch.zeros(num_videos, num_classes, dtype=torch.float64)
        self._views = torch.full((num_videos, views_per_video), MISSING, dtype=torch.int8)
        self._errors: dict[tuple[int, int], str] = {}
        if keep_views is None:
            keep_views = torch.distributed.is_available() and torch.distributed.is_initialized() and (
                torch.distributed.get_world_size() > 1
            )
        self.keep_views = bool(keep_views)
        self._kept_indices: list[int] = []
        self._kept_rows: list[torch.Tensor] = []

    def add(
        self,
        scores: torch.Tensor,
        indices: torch.Tensor | Sequence[int],
        errors: Sequence[str | None] | None = None,
    ) -> None:
        """Add a batch: ``scores`` (B, C) for dataset ``indices`` (B,); ``errors[b]`` non-empty marks a failed view.

        A (video, view) already added is ignored; a failed view is recorded with its message and
        its scores are not used (a later successful copy of it is still added).
        """
        scores = scores.detach()
        if scores.dim() != 2 or scores.shape[1] != self.num_classes:
            raise ValueError(f"scores must be (B, {self.num_classes}), got shape {tuple(scores.shape)}")
        index_list = [int(i) for i in (indices.tolist() if isinstance(indices, torch.Tensor) else indices)]
        if len(index_list) != scores.shape[0]:
            raise ValueError(f"{scores.shape[0]} score rows but {len(index_list)} indices")
        if errors is not None and len(errors) != len(index_list):
            raise ValueError(f"{len(index_list)} indices but {len(errors)} error entries")
        limit = self.num_videos * self.views_per_video
        rows = scores.to("cpu", torch.float64)
        for b, index in enumerate(index_list):
            if not 0 <= index < limit:
                raise ValueError(
                    f"dataset index {index} is outside {self.num_videos} videos x {self.views_per_video} views "
                    f"(indices 0..{limit - 1})"
                )
            video, view = divmod(index, self.views_per_video)
            state = int(self._views[video, view])
            if state == ADDED:
                continue
            message = errors[b] if errors is not None else None
            if message:
                self._views[video, view] = FAILED
                self._errors[(video, view)] = str(message)
                continue
            self._combine(video, rows[b])
            self._views[video, view] = ADDED
            if self.keep_views:
                self._kept_indices.append(index)
                self._kept_rows.append(scores[b].to("cpu", torch.float32, copy=True))
            self._errors.pop((video, view), None)

    def _combine(self, video: int, row: torch.Tensor) -> None:
        if self.method == "sum":
            self._scores[video] += row
        else:
            torch.maximum(self._scores[video], row, out=self._scores[video])

    def counts(self) -> torch.Tensor:
        """Views added per video, (num_videos,) int64."""
        return (self._views == ADDED).sum(dim=1)

    def incomplete(self) -> dict[int, dict]:
        """Videos with a missing or failed view: ``{video: {"added", "expected", "missing", "failed"}}``.

        ``missing`` lists the view numbers never seen, ``failed`` maps a failed view to its error
        message ("" when it failed on another process and only the fact was merged).
        """
        result: dict[int, dict] = {}
        for video in torch.nonzero((self._views != ADDED).any(dim=1)).flatten().tolist():
            row = self._views[video]
            result[video] = {
                "added": int((row == ADDED).sum()),
                "expected": self.views_per_video,
                "missing": torch.nonzero(row == MISSING).flatten().tolist(),
                "failed": {
                    view: self._errors.get((video, view), "") for view in torch.nonzero(row == FAILED).flatten().tolist()
                },
            }
        return result

    def scores(self) -> torch.Tensor:
        """The ensembled scores, (num_videos, num_classes) float64 (a copy)."""
        return self._scores.clone()

    def accuracy(self, labels: torch.Tensor | Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
        """Top-k accuracy in percent over all videos, ``{"top1_acc": ..., "top5_acc": ...}`` (spec §9.5).

        As in the original, every video counts, including incomplete ones (see :meth:`incomplete`).
        """
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if labels.shape[0] != self.num_videos:
            raise ValueError(f"{labels.shape[0]} labels for {self.num_videos} videos")
        correct = topk_correct(self._scores, labels, ks)
        return {f"top{k}_acc": 100.0 * c / self.num_videos for k, c in zip(ks, correct)}

    def merge_state(self) -> dict[str, torch.Tensor]:
        """This process's state as a plain dict of tensors, to all-gather across ranks.

        ``views`` (num_videos, views_per_video) int8: 0 missing, 1 added, 2 failed; then either the
        added views' own rows, ``view_indices`` (K,) int64 and ``view_scores`` (K, C) float32 (when
        ``keep_views``), or the ensembled ``scores`` (num_videos, C) float64.
        """
        state: dict[str, torch.Tensor] = {"views": self._views.clone()}
        if self.keep_views:
            state["view_indices"] = torch.tensor(self._kept_indices, dtype=torch.int64)
            state["view_scores"] = (
                torch.stack(self._kept_rows) if self._kept_rows else torch.zeros(0, self.num_classes, dtype=torch.float32)
            )
        else:
            state["scores"] = self._scores.clone()
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Merge another process's (or this one's own) :meth:`merge_state` into this ensemble.

        With per-view rows the merge is exact: each row is added as by :meth:`add`, so views
        already here are ignored. With ensembled scores only, a video is merged exactly when its
        views here and there are disjoint or one set contains the other (and always for ``"max"``);
        a partial overlap cannot be untangled from sums and is an error asking for ``keep_views``.
        Failed views of the other side are recorded (without their message) where nothing is here.
        """
        views = state["views"].to("cpu", torch.int8)
        if tuple(views.shape) != tuple(self._views.shape):
            raise ValueError(
                f"cannot merge an ensemble of {tuple(views.shape)} (videos, views) into one of {tuple(self._views.shape)}"
            )
        if "view_indices" in state:
            rows = state["view_scores"]
            if rows.dim() != 2 or rows.shape[1] != self.num_classes:
                raise ValueError(f"view_scores must be (K, {self.num_classes}), got shape {tuple(rows.shape)}")
            self.add(rows, state["view_indices"])
        else:
            self._merge_sums(state["scores"].to("cpu", torch.float64), views)
        failed_there = (views == FAILED) & (self._views == MISSING)
        self._views[failed_there] = FAILED

    def _merge_sums(self, scores: torch.Tensor, views: torch.Tensor) -> None:
        if tuple(scores.shape) != tuple(self._scores.shape):
            raise ValueError(f"cannot merge scores of shape {tuple(scores.shape)} into {tuple(self._scores.shape)}")
        here, there = self._views == ADDED, views == ADDED
        new = (there & ~here).any(dim=1)
        if self.method == "max":
            torch.maximum(self._scores, scores, out=self._scores)
        else:
            overlap = (there & here).any(dim=1)
            contained = (~here | there).all(dim=1)  # every view here is also there
            partial = new & overlap & ~contained
            if bool(partial.any()):
                videos = torch.nonzero(partial).flatten()[:3].tolist()
                raise ValueError(
                    f"{int(partial.sum())} videos (e.g. {videos}) have views both here and in the merged state, "
                    "plus views only there: their summed scores cannot be merged; build the ensembles with "
                    "keep_views=True (or give every process disjoint indices)"
                )
            disjoint = new & ~overlap
            replace = new & overlap & contained
            self._scores[disjoint] += scores[disjoint]
            self._scores[replace] = scores[replace]
        self._views[there] = ADDED
        for key in [k for k in self._errors if int(self._views[k]) == ADDED]:
            del self._errors[key]
        if self.keep_views and bool(new.any()):
            self.keep_views = False  # those views' own rows are unknown here: a later merge_state sends sums
            self._kept_indices.clear()
            self._kept_rows.clear()
