"""Atomic file replacement: a reader sees the old file or the whole new one, never half a file.

The new content goes to a temporary file in the destination's folder (so the final rename never
crosses file systems), is flushed and fsynced, and then ``os.replace``\\ s the destination; the
folder is fsynced too, so the rename survives a power cut. On any error the temporary file is
removed and the destination is left as it was.

    with atomic_write("out/checkpoint.pyth") as f:          # bytes
        torch.save(obj, f)
    with atomic_write("out/val.csv", "w") as f:              # text: UTF-8, "\\n" line endings
        f.write(text)
    with atomic_output_path("cache/lib.so") as tmp:          # for tools that write to a path
        subprocess.run(["cc", ..., "-o", str(tmp)], check=True)

Used by checkpoints (spec §9.4), the synthetic dataset writer, and any cache of built artefacts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_write", "atomic_output_path"]

_MODES = ("wb", "w", "wt")


def _fsync_folder(folder: Path) -> None:
    """Persist a rename in `folder` (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> Path:
    """A hidden sibling of `path` that keeps its suffix (tools pick the format from it)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without error it replaces `path`.

    For writers that take a file name (a compiler, a muxer, an exporter). The caller writes the
    whole file there; it is fsynced (``durable=True``) and renamed over `path`. The parent
    folder is created if needed. If the block raises, or writes nothing, `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: nothing was written to the temporary file {tmp}")
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str = "utf-8", newline: str | None = "\n"
) -> Iterator[IO[Any]]:
    """Yield an open file whose content replaces `path` atomically when the block ends without error.

    mode: "wb" (bytes, the default) or "w" (text in `encoding`, lines ending in `newline`; the
    defaults give UTF-8 with "\\n" on every platform). The new file gets the usual permissions
    (0o666 less the umask), like a file opened with ``open(path, "w")``.
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be one of {', '.join(_MODES)}, got {mode!r}")
    with atomic_output_path(path, durable=False) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        if mode == "wb":
            file = os.fdopen(fd, "wb")
        else:
            file = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
    _fsync_folder(Path(path).parent)
