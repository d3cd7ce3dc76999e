"""Progress of training, evaluation and testing loops: a tqdm bar in a terminal, log lines always.

When stderr is a terminal, a tqdm bar shows the ETA, clips/s and the loop's current values (loss,
lr, ...). Plain log lines (every ``log_period`` iterations and at the end) go to the ``vov3d``
logger in every case, so the log file (``OUTPUT_DIR/log.txt``) always holds them; spec §9.6 keeps
its ``json_stats`` lines separately.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

logger = logging.getLogger("vov3d.progress")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.4f}"
    return str(value)


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` for an ETA."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """One loop's progress: ``update(clips, **values)`` after each iteration, ``close()`` at the end.

    ``total`` = iterations expected, ``start`` = iterations already done (a mid-epoch resume),
    ``bar`` = None: a tqdm bar only if ``stream`` (default stderr) is a terminal, redrawn at most every
    ``refresh_seconds``.
    """

    def __init__(
        self,
        desc: str,
        total: int,
        *,
        log_period: int = 10,
        start: int = 0,
        bar: bool | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
        refresh_seconds: float = 0.5,
    ) -> None:
        self.desc = desc
        self.total = int(total)
        self.log_period = max(1, int(log_period))
        self.done = int(start)
        self.clips = 0
        self.values: dict[str, Any] = {}
        self.enabled = enabled
        self._start_done = self.done
        self._t0 = time.perf_counter()
        stream = sys.stderr if stream is None else stream
        if bar is None:
            bar = enabled and hasattr(stream, "isatty") and stream.isatty()
        self._bar = None
        if bar and enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.done, desc=desc, file=stream, dynamic_ncols=True,
                             leave=False, mininterval=refresh_seconds)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    @property
    def clips_per_second(self) -> float:
        elapsed = self.elapsed
        return self.clips / elapsed if elapsed > 0 else 0.0

    def seconds_per_iteration(self) -> float:
        """Mean time of the iterations run by this loop so far (0 before the first)."""
        run = self.done - self._start_done
        return self.elapsed / run if run > 0 else 0.0

    def eta(self) -> float:
        """Seconds left at the rate of this loop so far."""
        run = self.done - self._start_done
        if run <= 0:
            return 0.0
        return self.elapsed / run * max(0, self.total - self.done)

    def update(self, clips: int, **values: Any) -> None:
        """One iteration of ``clips`` clips done; ``values`` (loss, lr, ...) are shown and logged."""
        self.done += 1
        self.clips += int(clips)
        self.values.update(values)
        if not self.enabled:
            return
        if self._bar is not None:
            shown = {k: _format_value(v) for k, v in self.values.items()}
            shown["clips/s"] = f"{self.clips_per_second:.1f}"
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)
        if self.done % self.log_period == 0 or self.done == self.total:
            logger.info("%s", self.line())

    def line(self) -> str:
        """``desc iter i/N eta h:mm:ss clips/s x k v ...``"""
        parts = [f"{self.desc} iter {self.done}/{self.total}", f"eta {format_seconds(self.eta())}",
                 f"clips/s {self.clips_per_second:.1f}"]
        parts += [f"{k} {_format_value(v)}" for k, v in self.values.items()]
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
