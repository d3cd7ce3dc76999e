"""Class names shipped with the package: Kinetics-400 and Something-Something-V2 (one name a line).

    >>> from vov3d.labels import load_class_names
    >>> load_class_names("kinetics400")[0]
    'abseiling'

The line number (0-based) is the class id of the standard annotation files. Sources: the
Kinetics-400 list torchvision ships (BSD-3) and the Something-Something-V2 templates gluoncv ships
(Apache-2.0), sorted as in the official ``something-something-v2-labels.json``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

BUILTIN_LABELS = {
    "kinetics400": "kinetics400.txt",
    "k400": "kinetics400.txt",
    "ssv2": "something-something-v2.txt",
    "something-something-v2": "something-something-v2.txt",
}
"""Names accepted by :func:`load_class_names` (and ``--labels``) for the lists shipped here."""


def read_class_names_file(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one a line; blank lines at the end are ignored.

    Raises FileNotFoundError or ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class names file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read class names (expected UTF-8 text, one name a line): {err}") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ValueError(f"{path}: no class names (expected one name a line)")
    blank = [i + 1 for i, name in enumerate(names) if not name]
    if blank:
        raise ValueError(f"{path}: blank class name on line {blank[0]} (expected one name a line)")
    return names


def load_class_names(name_or_path: str | os.PathLike) -> list[str]:
    """The class names of a shipped list (``kinetics400``, ``ssv2``; see BUILTIN_LABELS) or of a file."""
    key = str(name_or_path)
    if key.lower() in BUILTIN_LABELS:
        text = resources.files(__name__).joinpath(BUILTIN_LABELS[key.lower()]).read_text(encoding="utf-8")
        return [line.strip() for line in text.splitlines() if line.strip()]
    if not Path(key).exists():
        raise FileNotFoundError(
            f"class names {key!r}: neither a shipped list ({', '.join(sorted(BUILTIN_LABELS))}) nor an existing file"
        )
    return read_class_names_file(key)
