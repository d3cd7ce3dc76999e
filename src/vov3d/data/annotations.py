"""Reading annotation files robustly (spec §8.2, §8.3, §11.12).

Lines may end in LF, CRLF or CR, the last line may lack its newline, a UTF-8 byte-order mark is
ignored and blank lines are skipped. Errors name the file and the 1-based line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from vov3d.data.errors import AnnotationError


def read_text(path: str | Path) -> str:
    """The whole file as text (UTF-8, BOM dropped); AnnotationError if missing or not UTF-8."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise AnnotationError(path, 0, "annotation file not found") from None
    except UnicodeDecodeError as err:
        raise AnnotationError(path, 0, f"not UTF-8 text: {err}") from None
    except OSError as err:
        raise AnnotationError(path, 0, f"cannot read: {err}") from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending and outer whitespace) of non-blank lines."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, line


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a syntax error becomes an AnnotationError with its line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(path, err.lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None


def resolve_path(path: str, prefix: str | Path, annotation_file: str | Path) -> str:
    """A media path from an annotation file.

    With a prefix: ``os.path.join(prefix, path)`` as the original does (DATA.PATH_PREFIX). Without
    one, a relative path is taken relative to the annotation file's folder (the original uses the
    working directory).
    """
    if prefix:
        return os.path.join(str(prefix), path)
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(annotation_file)), path)
