"""A cache of prepared synthetic datasets, so commands and tests without ``--data`` prepare once."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lanekd.data.h5 import FORMAT_VERSION, read_attrs


def cache_dir(cache: str | Path | None = None) -> Path:
    """The cache folder: ``cache``, else ``$LANEKD_CACHE``, else ``~/.cache/lanekd``."""
    if cache is not None:
        return Path(cache)
    env = os.environ.get("LANEKD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lanekd"


def synthetic_cache_path(split: str, n: int, size: tuple[int, int] = (288, 800), seed: int = 0,
                         cache: str | Path | None = None) -> Path:
    """Where :func:`ensure_synthetic` keeps the file for this key (the key is in the name)."""
    h, w = size
    return cache_dir(cache) / f"synthetic-{split}-n{n}-{h}x{w}-seed{seed}-v{FORMAT_VERSION}.h5"


def _valid(path: Path, n: int) -> bool:
    try:
        attrs = read_attrs(path)
    except OSError:
        return False
    return bool(attrs.get("complete")) and int(attrs.get("count", -1)) == n


@contextlib.contextmanager
def _locked(lock_path: Path):
    """An exclusive inter-process lock (POSIX ``flock``; elsewhere a best-effort no-op)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_synthetic(split: str, n: int, size: tuple[int, int] = (288, 800), seed: int = 0,
                     cache_dir: str | Path | None = None, workers: int | None = None) -> Path:
    """Prepare ``n`` synthetic scenes of ``split`` at ``size`` once and return the cached file.

    Keyed by (split, n, size, seed, format version). Safe when several processes ask at once: the
    first prepares under an exclusive lock while the others wait and then reuse its file; the file
    appears atomically (temporary name + rename).
    """
    path = synthetic_cache_path(split, n, size, seed, cache_dir)
    if _valid(path, n):
        return path
    with _locked(path.with_name(path.name + ".lock")):
        if _valid(path, n):  # another process finished it while we waited
            return path
        from lanekd.data.prepare import prepare_dataset

        if workers is None:
            workers = min(4, os.cpu_count() or 1)
        prepare_dataset("synthetic", path, split=split, size=size, n=n, seed=seed, workers=workers,
                        quiet=True)
    return path
