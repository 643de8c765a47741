"""Progress of a long job over events (an export, a replay): a bar with events/s
and the time left on a terminal, plain periodic lines anywhere else (logs, CI).

    with progress("export", total) as bar:
        for batch in batches:
            ...
            bar.advance(len(batch))
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from events.progress import Progress


class _Rate(ProgressColumn):
    """Events per second since the start (rich's own speed needs two samples)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{rate:,.0f} events/s", style="progress.data.speed")


class _Bar:
    def __init__(self, progress: RichProgress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)


class PlainProgress:
    """A line now and then: done, total, events/s, time left."""

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._total = total
        self._stream = stream
        self._every = every
        self._clock = clock
        self._started = self._last = clock()
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count
        if self._clock() - self._last >= self._every:
            self.report()

    def report(self) -> None:
        """Print where the job is now."""
        now = self._clock()
        self._last = now
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = f"{self._label}: {self.done:,}"
        if self._total:
            line += f"/{self._total:,} events ({100 * self.done / self._total:.0f}%)"
        else:
            line += " events"
        line += f", {rate:,.0f} events/s"
        if self._total and rate > 0 and self.done < self._total:
            line += f", {(self._total - self.done) / rate:,.0f} s left"
        print(line, file=self._stream, flush=True)


@contextmanager
def progress(
    label: str, total: int | None, *, stream: TextIO | None = None, terminal: bool | None = None
) -> Iterator[Progress]:
    """A progress display for ``total`` events (None: unknown) on ``stream``
    (stderr by default); a rich bar if it is a terminal, else plain lines."""
    out = stream or sys.stderr
    if not (out.isatty() if terminal is None else terminal):
        plain = PlainProgress(label, total, out)
        yield plain
        # A job that ended well covered its whole range, even the events it
        # had no need to count (a replay skips those of no projection's).
        plain.done = max(plain.done, total or 0)
        plain.report()
        return
    console = Console(file=out, force_terminal=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _Rate(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield _Bar(bar, task)
        done = bar.tasks[0].completed
        bar.update(task, completed=max(done, total or 0), total=max(done, total or 0))
