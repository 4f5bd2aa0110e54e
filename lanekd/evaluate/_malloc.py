"""Keep freed memory in the process (glibc): for one-shot commands such as ``lanekd evaluate``.

The batched evaluators allocate and free arrays of a few MB per batch. glibc hands such blocks back to
the kernel when they are freed (``mmap``/heap trimming), so every batch faults its memory in again:
on a CULane test set that was a fifth of the command's CPU time (system time). A command that exits
when it is done can keep the memory instead. Nothing changes where ``mallopt`` is not available.
"""

from __future__ import annotations

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds for this process (and the workers it forks).

    Returns:
        True where ``mallopt`` accepted both.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, ImportError):  # not glibc (macOS, Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    ok &= mallopt(_M_MMAP_THRESHOLD, 1 << 25)  # glibc's largest allowed value (32 MiB)
    return bool(ok)
