"""The kernel library (``vov3d.ops.library``): built once and cached on disk, and says why when it cannot be."""

from __future__ import annotations

import shutil

from vov3d.ops import library
from vov3d.ops.library import library_unavailable, load_library


def test_library_is_built_once_and_cached_on_disk(tmp_path):
    lib = load_library(tmp_path)
    built = list((tmp_path / "kernels").glob("*.so"))
    assert lib is not None and len(built) == 1
    assert load_library(tmp_path) is lib
    mtime = built[0].stat().st_mtime_ns
    library._loaded.clear()  # as a new process would: the file is loaded, not rebuilt
    assert load_library(tmp_path) is not None
    assert built[0].stat().st_mtime_ns == mtime


def test_without_a_compiler_the_library_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang to be found
    assert library_unavailable() == "no C compiler found (set $CC, or install gcc)"
    assert load_library(tmp_path / "cache", warn=False) is None
    assert "no C compiler" in library.library_error(tmp_path / "cache")


def test_a_missing_source_is_named(tmp_path, monkeypatch):
    csrc = tmp_path / "csrc"
    shutil.copytree(library.CSRC, csrc)
    (csrc / "vector.h").unlink()  # what the wheel of issue 15 lost
    monkeypatch.setattr(library, "CSRC", csrc)
    monkeypatch.setattr(library, "SOURCES", tuple(csrc / f.name for f in library.SOURCES))
    monkeypatch.setattr(library, "HEADERS", tuple(csrc / f.name for f in library.HEADERS))
    reason = library_unavailable()
    assert reason is not None and "vector.h" in reason and str(csrc) in reason
