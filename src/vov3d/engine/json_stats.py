"""The original's ``json_stats`` log lines (``logging.log_json_stats``, spec §9.6)."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

PREFIX = "json_stats: "


def _float_text(value: float) -> str:
    # simplejson with Decimal("{:.5f}") in the original: 0.12346, NaN, Infinity, -Infinity.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.5f}"


def json_stats_line(stats: Mapping[str, Any]) -> str:
    """``"json_stats: "`` + the stats as JSON with sorted keys, floats written with 5 decimals (spec §9.6).

    Separators are ``", "`` and ``": "`` as in the original. Values may be str, int, bool, None,
    float (numpy scalars included) or JSON-serialisable lists/dicts; a tensor or other object is a
    ``TypeError`` naming its key.
    """
    parts = []
    for key in sorted(stats):
        if not isinstance(key, str):
            raise TypeError(f"json_stats keys must be strings, got {key!r}")
        value = stats[key]
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            text = str(int(value))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            text = _float_text(float(value))
        else:
            try:
                text = json.dumps(value, sort_keys=True)
            except TypeError as exc:
                raise TypeError(f"json_stats value of {key!r} is a {type(value).__name__}, not a JSON value") from exc
        parts.append(f"{json.dumps(key)}: {text}")
    return PREFIX + "{" + ", ".join(parts) + "}"


def test_final_stats(top1: float, top5: float) -> dict[str, str]:
    """The ``test_final`` record: top-1/top-5 accuracy (%) as strings with 2 decimals (spec §9.5)."""
    return {"split": "test_final", "top1_acc": f"{top1:.2f}", "top5_acc": f"{top5:.2f}"}


test_final_stats.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
