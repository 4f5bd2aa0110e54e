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
                         cache: str | Path | None = None, line_width: int | None = None) -> Path:
    """Where :func:`ensure_synthetic` keeps the file for this key (the key is in the name)."""
    h, w = size
    lw = f"-lw{line_width}" if line_width else ""
    return cache_dir(cache) / f"synthetic-{split}-n{n}-{h}x{w}{lw}-seed{seed}-v{FORMAT_VERSION}.h5"


def wide_line_width(size: tuple[int, int]) -> int:
    """The training label width lanekd uses for its built-in synthetic data: 1/40 of the width
    (6 px at 256, 10 px at 400, 20 px at 800), against CULane's official 16 px at 1640 (2.5 px at
    256). At small inputs the official width leaves so few lane pixels that ENet-SAD stays at
    F1 0 for hundreds of iterations; docs/training.md has the measurements."""
    return max(1, round(size[1] / 40))


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
                     cache_dir: str | Path | None = None, workers: int | None = None,
                     line_width: int | None = None) -> Path:
    """Prepare ``n`` synthetic scenes of ``split`` at ``size`` once and return the cached file.

    Keyed by (split, n, size, seed, label line width, format version); ``line_width`` is the
    training label width in pixels (``None``: CULane's official width scaled to ``size``).
    Safe when several processes ask at once: the first prepares under an exclusive lock while the
    others wait and then reuse its file; the file appears atomically (temporary name + rename).
    """
    path = synthetic_cache_path(split, n, size, seed, cache_dir, line_width)
    if _valid(path, n):
        return path
    with _locked(path.with_name(path.name + ".lock")):
        if _valid(path, n):  # another process finished it while we waited
            return path
        from lanekd.data.prepare import prepare_dataset

        if workers is None:
            workers = min(4, os.cpu_count() or 1)
        prepare_dataset("synthetic", path, split=split, size=size, n=n, seed=seed, workers=workers,
                        quiet=True, line_width=line_width)
    return path
