"""Rich consoles and progress bars shared by the CLI and long-running library steps.

Library code never prints: it reports progress through :func:`progress`, which
is silent unless the CLI enabled it (``EDGEKIT_PROGRESS`` / :func:`enable_progress`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_STATE = {"progress": os.environ.get("EDGEKIT_PROGRESS", "") not in ("", "0")}


def stderr_console() -> Console:
    return Console(stderr=True)


def enable_progress(on: bool = True) -> None:
    """Show rich progress bars for training, compression and benchmarking (the CLI turns this on)."""
    _STATE["progress"] = on


class _Task:
    def __init__(self, progress: Progress | None, task_id: TaskID | None) -> None:
        self._p, self._id = progress, task_id

    def advance(self, n: float = 1) -> None:
        if self._p is not None and self._id is not None:
            self._p.advance(self._id, n)

    def update(self, description: str | None = None, total: float | None = None) -> None:
        if self._p is not None and self._id is not None:
            self._p.update(self._id, description=description, total=total)


@contextmanager
def progress(description: str, total: float | None) -> Iterator[_Task]:
    """A progress bar on stderr when enabled, a no-op otherwise."""
    console = stderr_console()
    if not _STATE["progress"] or not console.is_terminal:  # no bars in logs and pipes
        yield _Task(None, None)
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )
    with bar:
        yield _Task(bar, bar.add_task(description, total=total))
