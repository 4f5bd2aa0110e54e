"""Progress reporting: a rich bar on a terminal, nothing otherwise (CI logs stay clean)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def use_progress_bar(quiet: bool = False) -> bool:
    """True when a live progress bar should be drawn: not quiet and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


def track(items: Iterable[T], total: int | None = None, description: str = "",
          quiet: bool = False) -> Iterator[T]:
    """Iterate ``items``, drawing a rich progress bar on a terminal only."""
    if not use_progress_bar(quiet):
        yield from items
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
