"""Atomic file creation: a killed job never leaves a half-written file under its final name.

Every writer in MaskSpec (feature archives, scp lists, stats, checkpoints, model files, results) goes through
these two helpers. The temporary file lives in the destination folder so that the final ``os.replace`` is a
rename on the same file system, which POSIX makes atomic.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block exits cleanly.

    On an exception the temporary file is removed and the exception propagates, so ``path`` keeps its old
    content (or stays absent).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    # mkstemp creates mode 0600; give the file the mode a plain open() would, so collaborators can read results
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open()`` for writing whose result appears under ``path`` only once the file is complete and flushed."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
