"""What to do with a bad input sample: fail at once (default) or skip it and keep a record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lanekd.errors import DataError

OnError = Literal["fail", "skip"]


@dataclass
class ErrorPolicy:
    """Collects :class:`DataError`s in ``skip`` mode, re-raises them in ``fail`` mode.

    Readers and the prepare pipeline call ``policy(err)`` for every bad sample and continue with
    the next one when it returns.
    """

    mode: OnError = "fail"
    skipped: list[DataError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {self.mode!r}")

    def __call__(self, error: DataError) -> None:
        if self.mode == "fail":
            raise error
        self.skipped.append(error)

    def report(self) -> list[dict[str, object]]:
        """JSON-ready list of skipped samples: ``{"file", "line", "error"}``."""
        return [{"file": e.path, "line": e.line, "error": e.message} for e in self.skipped]
