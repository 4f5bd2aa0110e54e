"""Atomic file output: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def tmp_path_for(path: str | Path) -> Path:
    """The temporary name used while ``path`` is being written (same folder, so rename is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp")


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
