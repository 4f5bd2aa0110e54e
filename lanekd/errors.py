"""Error types shared by the library and the CLI.

Every error a user can cause by bad input derives from :class:`LaneKDError`. The CLI prints
``str(err)`` as a single line and exits 1, so messages must name the offending file (and line).
"""

from __future__ import annotations

from pathlib import Path


class LaneKDError(Exception):
    """Base class for user-facing errors (bad input, missing files, bad options)."""


class DataError(LaneKDError):
    """A problem in an input file.

    Args:
        path: the offending file.
        message: what is wrong, one line, no trailing period needed.
        line: 1-based line number inside ``path`` when the file is line-oriented.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(LaneKDError):
    """An invalid option or combination of options."""
