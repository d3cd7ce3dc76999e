"""Errors raised by the data pipeline (spec §8; bad-data handling of issue 3).

Every message names the file (and line or entry where there is one) and what was expected, so a
user can fix the data without reading the code.
"""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Base class of all data-pipeline errors."""


class AnnotationError(DataError, ValueError):
    """A malformed annotation file: ``path:line: message`` (line 0 when the file as a whole is wrong)."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line > 0 else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # picklable across DataLoader worker processes
        return (type(self), (self.path, self.line, self.reason))


class EmptySplitError(DataError, ValueError):
    """A split with no usable videos."""


class MediaError(DataError, OSError):
    """A video or frame that cannot be read: missing, corrupt or truncated."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason))
