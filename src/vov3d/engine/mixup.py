"""Mixup and CutMix on video clips (ours, off by default: MIXUP.ENABLE; the original has neither, spec §9.1).

One mixing weight per batch; clip ``i`` is mixed with clip ``N - 1 - i`` (the batch reversed).
Mixup blends whole clips, ``lam * x_i + (1 - lam) * x_j``; CutMix pastes a spatial box of ``x_j``
into ``x_i``, the same box in every frame, and ``lam`` becomes the share of the frame area left
to ``x_i``. Targets are the label-smoothed one-hot vectors mixed with the same ``lam``.
"""

from __future__ import annotations

import math
import random

import torch


class MixupCutmix:
    """Mix a batch of clips (N, C, T, H, W) and turn its labels (N,) into soft targets (N, num_classes).

    With probability ``prob`` the batch is mixed, else returned as it is (with smoothed one-hot
    targets). When both alphas are > 0, CutMix is chosen with probability ``switch_prob``, mixup
    otherwise; an alpha of 0 disables its method. ``lam`` is drawn from Beta(alpha, alpha). Every
    random draw comes from ``generator`` (the global torch generator when ``None``), so a run is
    reproducible and resumable by saving the generator's state. ``last_lam`` and ``last_mode``
    ("mixup", "cutmix" or "none") describe the last call.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"alphas must be >= 0, got MIXUP.ALPHA={mixup_alpha}, MIXUP.CUTMIX_ALPHA={cutmix_alpha}")
        if not 0 <= prob <= 1 or not 0 <= switch_prob <= 1:
            raise ValueError(f"probabilities must be in [0, 1], got MIXUP.PROB={prob}, MIXUP.SWITCH_PROB={switch_prob}")
        if prob > 0 and mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("mixup is enabled but MIXUP.ALPHA and MIXUP.CUTMIX_ALPHA are both 0: set one > 0")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {label_smoothing} (SOLVER.LABEL_SMOOTHING)")
        self.num_classes = num_classes
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.label_smoothing = float(label_smoothing)
        self.generator = generator
        self.last_lam = 1.0
        self.last_mode = "none"

    def _uniform(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def _beta(self, alpha: float) -> float:
        # torch's Beta sampler takes no generator: a Python RNG seeded from ours draws it.
        seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        return random.Random(seed).betavariate(alpha, alpha)

    def smoothed_one_hot(self, labels: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
        """``(1 - s) * onehot + s / C`` for class ids (N,)."""
        off = self.label_smoothing / self.num_classes
        target = torch.full((labels.shape[0], self.num_classes), off, device=device or labels.device)
        return target.scatter_(1, labels.long().view(-1, 1).to(target.device), 1.0 - self.label_smoothing + off)

    def _box(self, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy = int(torch.randint(0, height, (), generator=self.generator))
        cx = int(torch.randint(0, width, (), generator=self.generator))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        return y0, y1, x0, x1

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed clips (a new tensor; the input is not changed) and soft targets (N, num_classes) float32."""
        if clips.dim() != 5:
            raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")
        if labels.dim() != 1 or labels.shape[0] != clips.shape[0]:
            raise ValueError(f"labels must be (N,) with N={clips.shape[0]}, got shape {tuple(labels.shape)}")
        target = self.smoothed_one_hot(labels, clips.device)
        self.last_lam, self.last_mode = 1.0, "none"
        if self.prob == 0 or self._uniform() >= self.prob:
            return clips, target
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or self._uniform() < self.switch_prob)
        if use_cutmix:
            lam = self._beta(self.cutmix_alpha)
            height, width = clips.shape[-2:]
            y0, y1, x0, x1 = self._box(lam, height, width)
            mixed = clips.clone()
            mixed[..., y0:y1, x0:x1] = clips.flip(0)[..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
            self.last_mode = "cutmix"
        else:
            lam = self._beta(self.mixup_alpha)
            mixed = clips * lam + clips.flip(0) * (1.0 - lam)
            self.last_mode = "mixup"
        self.last_lam = lam
        return mixed, target * lam + target.flip(0) * (1.0 - lam)
