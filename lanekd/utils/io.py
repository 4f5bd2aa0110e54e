"""Atomic file output: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lanekd.errors import LaneKDError


def tmp_path_for(path: str | Path) -> Path:
    """The temporary name used while ``path`` is being written (same folder, so rename is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp")


def os_error_message(path: str | Path | None, exc: OSError) -> str:
    """``"<file>: <reason>"`` for an operating-system error: the file the OS names, else ``path``."""
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, FileExistsError) and where is not None and Path(where).is_file():
        reason = "is a file, expected a folder"  # mkdir of a folder whose name a file already has
    return f"{where}: {reason}" if where is not None else reason


def _probe_writable(folder: Path, what: str) -> None:
    """The deepest existing ancestor of ``folder`` must be a folder we may write into (the writer
    creates the missing rest)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise LaneKDError(f"{probe}: is not a folder, cannot write {what} under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LaneKDError(f"{probe}: permission denied (cannot write {what})")


def check_output_file(path: str | Path) -> Path:
    """Check, before any work, that ``path`` can be written as a file; raise a one-line
    :class:`LaneKDError` naming it otherwise (an existing folder, a parent that is a regular file,
    an unwritable folder)."""
    p = Path(path)
    if p.is_dir():
        raise LaneKDError(f"{p}: is an existing folder, expected an output file name")
    _probe_writable(p.parent, p.name)
    return p


def check_output_dir(path: str | Path) -> Path:
    """Check, before any work, that ``path`` is (or can be created as) a writable folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise LaneKDError(f"{p}: is a file, expected an output folder")
    _probe_writable(p, "output")
    return p


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on error delete it.

    ``keep_on_error=True`` leaves the temporary file for a later resume (e.g. ``prepare --resume``).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final)
    try:
        yield tmp
    except BaseException:
        if not keep_on_error:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    os.replace(tmp, final)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays/scalars, bytes and tuples turned into plain JSON values."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [jsonable(x) for x in value]
    if isinstance(value, dict):
        return {str(k): jsonable(x) for k, x in value.items()}
    return value
