"""ConfigError: one user-facing error for every bad config file, key or value (issue 16, "Bad input").

A problem names where the value came from (file and line, or the command line), the key, what
was expected and what was given; for an unknown key it also lists the nearest valid keys.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a YAML file (and line), the command line, or the defaults."""

    file: str | None = None
    line: int | None = None
    command_line: bool = False

    def __str__(self) -> str:
        if self.command_line:
            return "command line"
        if self.file is None:
            return "defaults"
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config."""

    message: str
    keys: tuple[str, ...] = ()
    origins: tuple[Origin, ...] = ()
    suggestions: tuple[str, ...] = ()

    @property
    def key(self) -> str | None:
        return self.keys[0] if self.keys else None

    def __str__(self) -> str:
        where = "; ".join(dict.fromkeys(str(o) for o in self.origins))
        text = f"{where}: " if where else ""
        if self.keys:
            text += f"{', '.join(self.keys)}: "
        text += self.message
        if self.suggestions:
            text += f" (nearest valid keys: {', '.join(self.suggestions)})"
        return text


class ConfigError(ValueError):
    """A bad config: unknown key, wrong type, value out of range, inconsistent values, unreadable file.

    ``problems`` lists everything found (a file is checked completely before raising); ``key``,
    ``file``, ``line`` and ``suggestions`` describe the first problem.
    """

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        if len(self.problems) == 1:
            text = f"bad config: {self.problems[0]}"
        else:
            text = f"bad config, {len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)

    @property
    def key(self) -> str | None:
        return self.problems[0].key

    @property
    def suggestions(self) -> tuple[str, ...]:
        return self.problems[0].suggestions

    @property
    def file(self) -> str | None:
        origins = self.problems[0].origins
        return origins[0].file if origins else None

    @property
    def line(self) -> int | None:
        origins = self.problems[0].origins
        return origins[0].line if origins else None


def nearest_keys(key: str, valid: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Valid keys closest to `key`: same last part in another section first, then difflib's matches."""
    valid = list(valid)
    leaf = key.rsplit(".", 1)[-1].upper()
    same_leaf = [k for k in valid if k.rsplit(".", 1)[-1].upper() == leaf]
    upper = {k.upper(): k for k in valid}
    close = [upper[k] for k in difflib.get_close_matches(key.upper(), list(upper), n=n, cutoff=0.6)]
    leaves: dict[str, list[str]] = {}
    for k in valid:
        leaves.setdefault(k.rsplit(".", 1)[-1].upper(), []).append(k)
    close_leaf = [k for m in difflib.get_close_matches(leaf, list(leaves), n=n, cutoff=0.75) for k in leaves[m]]
    return tuple(dict.fromkeys(same_leaf + close + close_leaf))[:n]


def nearest_choices(value: object, choices: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Choices closest to a bad string value (case-insensitive)."""
    if not isinstance(value, str):
        return ()
    lower = {c.lower(): c for c in choices}
    return tuple(lower[m] for m in difflib.get_close_matches(value.lower(), list(lower), n=n, cutoff=0.5))
