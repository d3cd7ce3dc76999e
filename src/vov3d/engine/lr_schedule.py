"""Learning-rate schedule of the original's ``utils/lr_policy.py`` (spec §9.2), as one frozen value.

The learning rate is evaluated at a fractional epoch ``e = epoch + iteration / iterations_per_epoch``
before every iteration (spec §9.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POLICIES = ("cosine", "steps_with_relative_lrs")


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate as a function of the fractional epoch (spec §9.2).

    * ``cosine``: ``cosine_end_lr + (base_lr - cosine_end_lr) * (cos(pi * e / max_epoch) + 1) / 2``.
    * ``steps_with_relative_lrs``: ``lrs[k] * base_lr`` where ``k`` is the index of the last element
      of ``steps`` that is ``<= e`` (``steps`` starts at 0; epochs past ``max_epoch`` keep the last
      step's value). ``lrs`` may be longer than ``steps``; the extra entries are unused, as in the
      original configs. Steps at or past ``max_epoch`` are allowed (they are never reached), and so
      is a warm-up longer than the run, as in the original: a shortened run (``SOLVER.MAX_EPOCH 2``
      on a full recipe) keeps working.
    * Linear warm-up for both: for ``e < warmup_epochs`` the rate goes linearly from
      ``warmup_start_lr`` to the *policy's value at* ``warmup_epochs`` (not ``base_lr``).
    """

    policy: str
    base_lr: float
    max_epoch: float
    cosine_end_lr: float = 0.0
    steps: tuple[float, ...] = ()
    lrs: tuple[float, ...] = ()
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0

    def __post_init__(self) -> None:
        # Lists from a config are accepted and stored as tuples, so that the value stays hashable.
        object.__setattr__(self, "steps", tuple(float(s) for s in self.steps))
        object.__setattr__(self, "lrs", tuple(float(r) for r in self.lrs))
        if self.policy not in POLICIES:
            raise ValueError(f"LR policy {self.policy!r} is unknown: expected one of {', '.join(POLICIES)} (SOLVER.LR_POLICY)")
        if not self.max_epoch > 0:
            raise ValueError(f"max_epoch must be > 0, got {self.max_epoch} (SOLVER.MAX_EPOCH)")
        if not self.base_lr >= 0:
            raise ValueError(f"base_lr must be >= 0, got {self.base_lr} (SOLVER.BASE_LR)")
        if not self.warmup_epochs >= 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs} (SOLVER.WARMUP_EPOCHS)")
        if not self.warmup_start_lr >= 0:
            raise ValueError(f"warmup_start_lr must be >= 0, got {self.warmup_start_lr} (SOLVER.WARMUP_START_LR)")
        if self.policy == "steps_with_relative_lrs":
            self._check_steps()

    def _check_steps(self) -> None:
        steps, lrs = self.steps, self.lrs
        if not steps or steps[0] != 0:
            raise ValueError(f"steps must start with 0, got {list(steps)} (SOLVER.STEPS)")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"steps must be strictly increasing, got {list(steps)} (SOLVER.STEPS)")
        if len(lrs) < len(steps):
            raise ValueError(
                f"lrs needs one relative rate per step: {len(steps)} steps {list(steps)} but {len(lrs)} rates "
                f"{list(lrs)} (SOLVER.LRS)"
            )
        if any(not r >= 0 for r in lrs):
            raise ValueError(f"lrs must be >= 0, got {list(lrs)} (SOLVER.LRS)")

    def policy_lr(self, epoch: float) -> float:
        """The policy's rate at ``epoch``, without warm-up (spec §9.2)."""
        if self.policy == "cosine":
            end = self.cosine_end_lr
            return end + (self.base_lr - end) * (math.cos(math.pi * epoch / self.max_epoch) + 1.0) * 0.5
        index = sum(1 for step in self.steps if step <= epoch) - 1
        return self.lrs[index] * self.base_lr

    def __call__(self, epoch: float) -> float:
        """The learning rate at the fractional ``epoch`` (>= 0), warm-up included (spec §9.2)."""
        if not epoch >= 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch < self.warmup_epochs:
            end = self.policy_lr(self.warmup_epochs)
            return self.warmup_start_lr + epoch * (end - self.warmup_start_lr) / self.warmup_epochs
        return self.policy_lr(epoch)
