"""Running an export: read the ledger after the destination's position, write
the batch, then advance the position; once until caught up, or following the
ledger. A destination's write is idempotent, so a run that dies between a write
and its checkpoint writes the same events again without doubling them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import msgspec

from events.connector import Database, Row
from events.leases import Lease
from events.progress import Progress
from events.retry import Backoff
from exporter.batch import ExportBatch, build_batch, erasures, fetch_rows, read_erased
from exporter.errors import DestinationUnavailable
from exporter.policy import Policy

log = logging.getLogger(__name__)


class Destination(Protocol):
    name: str
    batch_size: int
    """Events per batch it writes best (at most: a batch ends where the ledger does)."""

    async def prepare(self) -> int:
        """Make the destination ready to write; return the position it holds."""
        ...

    async def write(self, batch: ExportBatch) -> None:
        """Store the batch; writing the same batch twice must store it once."""
        ...

    async def commit(self, previous: int, batch: ExportBatch) -> None:
        """Advance the position from ``previous`` past the written batch."""
        ...


@runtime_checkable
class Rewriting(Destination, Protocol):
    """A destination that can replace rows it holds (an erased subject's)."""

    async def rewrite(self, batch: ExportBatch) -> None:
        """Replace the payloads of the rows it holds at the batch's positions."""
        ...


class ExportReport(msgspec.Struct, frozen=True):
    events: int
    batches: int
    position: int
    seconds: float


async def export(
    db: Database,
    destination: Destination,
    policy: Policy,
    *,
    start: int | None = None,
    follow: bool = False,
    batch_size: int | None = None,
    interval: float = 10.0,
    patience: float | None = 60.0,
    max_backoff: float = 30.0,
    progress: Progress | None = None,
    lease: Lease | None = None,
) -> ExportReport:
    """Export what the destination does not hold yet.

    Once (the default) it returns when it has caught up with the ledger; with
    ``follow`` it waits ``interval`` seconds whenever it has, so that writes come
    in batches rather than one per event. An unavailable destination is retried
    with backoff up to ``max_backoff`` seconds apart, for at most ``patience``
    seconds (None: for ever), without moving past the batch. With a ``lease``, it
    stops when the lease is lost. ``start``: the destination is prepared already
    and holds this position.
    """
    started = time.monotonic()
    position = await destination.prepare() if start is None else start
    size = batch_size or destination.batch_size

    async def write(batch: ExportBatch) -> None:
        await _write(destination, batch, patience, max_backoff)
        # Before the commit: a crash in between rewrites them again.
        if isinstance(destination, Rewriting):
            for stream, position in erasures(batch):
                erased = await read_erased(db, stream, position, policy)
                if erased is not None:
                    await destination.rewrite(erased)

    run = _Pipeline(db, destination, size, position, write, progress)
    try:
        while lease is None or lease.held:
            rows = await run.next_rows()
            if not rows:
                await run.flush()
                if not follow:
                    break
                await asyncio.sleep(interval)
                continue
            await run.store(await asyncio.to_thread(build_batch, rows, policy))
            if follow and len(rows) < run.batch_size:
                # Caught up: let events gather rather than write them one by one.
                await run.flush()
                await asyncio.sleep(interval)
        await run.flush()
    finally:
        await run.abandon()
    return ExportReport(
        events=run.events, batches=run.batches, position=run.committed,
        seconds=time.monotonic() - started,
    )  # fmt: skip


class _Pipeline:
    """Three batches in flight: the next one read from the database, this one
    redacted (in a thread), the previous one written and committed (in the
    background, one at a time and in order)."""

    def __init__(
        self,
        db: Database,
        destination: Destination,
        batch_size: int,
        position: int,
        write: Callable[[ExportBatch], Awaitable[None]],
        progress: Progress | None,
    ) -> None:
        self._db = db
        self._destination = destination
        self.batch_size = batch_size
        self._read = position
        self.committed = position
        self._write = write
        self._progress = progress
        self.events = self.batches = 0
        self._ahead: asyncio.Task[list[Row]] | None = None
        self._storing: asyncio.Task[None] | None = None

    async def next_rows(self) -> list[Row]:
        rows = await (self._ahead or fetch_rows(self._db, self._read, self.batch_size))
        self._ahead = None
        if rows:
            self._read = rows[-1][0]
        if len(rows) == self.batch_size:
            # More is waiting: the database reads it while this process works.
            self._ahead = asyncio.create_task(fetch_rows(self._db, self._read, self.batch_size))
        return rows

    async def store(self, batch: ExportBatch) -> None:
        """Start writing ``batch`` once the previous one is committed."""
        await self.flush()
        self._storing = asyncio.create_task(self._store(batch))

    async def flush(self) -> None:
        """Wait until everything handed to ``store`` is committed (or raise why not)."""
        storing, self._storing = self._storing, None
        if storing is not None:
            await storing

    async def abandon(self) -> None:
        for task in (self._ahead, self._storing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _store(self, batch: ExportBatch) -> None:
        await self._write(batch)
        await self._destination.commit(self.committed, batch)
        self.committed = batch.last_position
        self.events += len(batch)
        self.batches += 1
        if self._progress is not None:
            self._progress.advance(len(batch))
        log.info(
            "export batch written",
            extra={"destination": self._destination.name, "events": len(batch),
                   "first": batch.first_position, "last": batch.last_position},
        )  # fmt: skip


async def _write(
    destination: Destination, batch: ExportBatch, patience: float | None, max_backoff: float
) -> None:
    deadline = None if patience is None else time.monotonic() + patience
    backoff = Backoff("export", min(0.5, max_backoff), max_backoff)
    delay = backoff.next()
    attempt = 1
    while True:
        try:
            await destination.write(batch)
        except DestinationUnavailable as exc:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            log.warning(
                "export destination unavailable: the batch waits",
                extra={"destination": destination.name, "first": batch.first_position,
                       "attempt": attempt, "retry_in": delay, "error": exc.detail},
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = backoff.next()
            attempt += 1
        else:
            if attempt > 1:
                log.info("export destination is back",
                         extra={"destination": destination.name, "attempts": attempt})  # fmt: skip
            return
