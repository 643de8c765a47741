"""One partition of a rebuild: fold the order streams that hash to it, read from
the rebuild's exported snapshot, and COPY the rows into the shadow tables.

Partitions run in processes of their own, so folding uses every core; each reads
the same snapshot (``SET TRANSACTION SNAPSHOT``), so together they see exactly
the ledger the rebuild started from.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from typing import Any, NamedTuple

import msgspec

from events.connector import Connection, Database, Row, Session
from events.errors import DataRefused
from events.model import ORDER_STREAM_PREFIX
from events.quarantine import error_text
from projections.facts import FoldEvent
from projections.projectors import (
    PROJECTIONS,
    QUERIES,
    Projection,
    fold_apart,
    group_by_order,
    read_order_streams,
)

FLUSH_ROWS = 20_000
READ_ROWS = 10_000


class PartitionJob(msgspec.Struct, frozen=True):
    url: str
    snapshot: str
    head: int
    part: int
    parts: int
    projections: list[str]


class PartitionDone(msgspec.Struct, frozen=True):
    events: int
    orders: int
    # Events a projection could not apply: (consumer, position, event id, error),
    # set aside at the swap.
    set_aside: list[tuple[str, int, str, str]] = msgspec.field(default_factory=list)


def run_in_process(job: PartitionJob, messages: Queue[Any]) -> None:
    """A partition process's entry point: progress and the result go to ``messages``."""
    try:
        done = asyncio.run(build_partition(job, lambda n: messages.put(("progress", n))))
    except BaseException as exc:
        messages.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    messages.put(("done", msgspec.json.encode(done)))


async def build_partition(job: PartitionJob, progress: Callable[[int], None]) -> PartitionDone:
    """Fold one partition of the snapshot into the shadow tables."""
    projections = [PROJECTIONS[name] for name in job.projections]
    db = Database(job.url, max_size=1)
    events = orders = 0
    with _without_gc():
        async with db.dedicated() as reader, db.dedicated() as writer_conn:
            writer = ShadowWriter(projections, writer_conn, job.head)
            async with reader.transaction() as session:
                await session.execute(QUERIES["repeatable_read"])
                await session.import_snapshot(job.snapshot)
                params = (job.head, job.parts, job.part)
                source = session.stream_batches(
                    QUERIES["read_order_streams_part"], params, READ_ROWS
                )
                async for order, order_events in _by_order(source):
                    writer.add(order, order_events)
                    orders += 1
                    events += len(order_events)
                    if writer.pending >= FLUSH_ROWS:
                        await writer.flush()
                        progress(events)
            await writer.flush()
            await writer.finish()
    progress(events)
    return PartitionDone(events=events, orders=orders, set_aside=writer.set_aside)


async def _by_order(
    batches: AsyncIterator[list[Row]],
) -> AsyncIterator[tuple[str, list[FoldEvent]]]:
    """Rows sorted by stream, arriving in batches, as (order id, its events); the
    last stream of a batch may go on in the next, so it waits for that one."""
    held: list[Row] = []
    async for batch in batches:
        rows = [*held, *batch]
        last = rows[-1][0]
        cut = len(rows)
        while cut and rows[cut - 1][0] == last:
            cut -= 1
        for group in group_by_order(rows[:cut]):
            yield group
        held = rows[cut:]
    for group in group_by_order(held):
        yield group


@contextmanager
def _without_gc() -> Iterator[None]:
    """A rebuild makes millions of short-lived objects, freed by reference
    counting (events hold no cycles); the cyclic collector would only rescan them
    again and again, which took half the rebuild's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Chunk(NamedTuple):
    """Rows of one table of one projection, to be loaded together."""

    projection: Projection
    place: int  # of the table among the projection's
    table: str
    columns: tuple[str, ...]
    rows: list[Any]


class _Undo(Exception):
    """Raised to undo a trial load once it is known to succeed."""


class ShadowWriter:
    """Buffers rebuilt rows and COPYs them into the shadow tables, on a connection
    of its own so the server loads one chunk while the next is folded.

    Events a fold cannot read are set aside as they are folded; rows the database
    refuses are found order by order, and the event that makes them refused
    event by event (only then), and set aside for that projection."""

    def __init__(self, projections: Sequence[Projection], conn: Connection, head: int) -> None:
        self._projections = projections
        self._conn = conn
        self._head = head
        self._rows: list[list[list[Any]]] = [[[] for _ in p.tables] for p in projections]
        self.pending = 0
        self._now = datetime.now(UTC)
        self._loading: asyncio.Task[None] | None = None
        self.set_aside: list[tuple[str, int, str, str]] = []

    def add(self, order: str, events: list[FoldEvent]) -> None:
        state, apart = fold_apart(order, events)
        for projection in self._projections:
            self.set_aside.extend(
                (projection.consumer_name, event.position, event.event_id, error)
                for event, error in apart
            )
        for projection, buckets in zip(self._projections, self._rows, strict=True):
            for bucket, rows in zip(buckets, projection.rows(state), strict=True):
                bucket.extend((*row, self._now) for row in rows)
                self.pending += len(rows)

    async def flush(self) -> None:
        """Start loading what is buffered (after the previous load is done)."""
        await self.finish()
        chunks = []
        for projection, buckets in zip(self._projections, self._rows, strict=True):
            for index, (table, bucket) in enumerate(zip(projection.tables, buckets, strict=True)):
                if bucket:
                    columns = table.columns + (("updated_at",) if table.timestamped else ())
                    rows = bucket if table.timestamped else [r[:-1] for r in bucket]
                    chunks.append(_Chunk(projection, index, shadow_of(table.name), columns, rows))
        self._rows = [[[] for _ in p.tables] for p in self._projections]
        self.pending = 0
        if chunks:
            self._loading = asyncio.create_task(self._load(chunks))
            await asyncio.sleep(0)  # let the load start before we get busy

    async def _load(self, chunks: list[_Chunk]) -> None:
        async with self._conn.transaction() as session:
            for chunk in chunks:
                try:
                    async with session.savepoint():
                        await session.copy_rows(chunk.table, chunk.columns, chunk.rows)
                except DataRefused:
                    await self._load_by_order(session, chunk)

    async def _load_by_order(self, session: Session, chunk: _Chunk) -> None:
        """A refused chunk, again one order at a time (every table's first column
        is the order id), finding the events behind the orders refused."""
        by_order: dict[str, list[Any]] = {}
        for row in chunk.rows:
            by_order.setdefault(row[0], []).append(row)
        for order, rows in by_order.items():
            try:
                async with session.savepoint():
                    await session.copy_rows(chunk.table, chunk.columns, rows)
            except DataRefused:
                await self._load_apart(session, chunk, order)

    async def _load_apart(self, session: Session, chunk: _Chunk, order: str) -> None:
        """The order's rows from its events up to the rebuild's head (the ledger
        is append-only: the same as the snapshot's), each event tried in turn;
        the ones that make the rows refused are set aside."""
        found = await read_order_streams(session, [ORDER_STREAM_PREFIX + order])
        events = [FoldEvent(*row[1:]) for row in found if row[1] <= self._head]
        kept: list[FoldEvent] = []
        for event in events:
            try:
                async with session.savepoint():
                    await self._copy_state(session, chunk, order, [*kept, event])
                    raise _Undo
            except _Undo:
                kept.append(event)
            except DataRefused as exc:
                consumer = chunk.projection.consumer_name
                self.set_aside.append((consumer, event.position, event.event_id, error_text(exc)))
        await self._copy_state(session, chunk, order, kept)

    async def _copy_state(
        self, session: Session, chunk: _Chunk, order: str, events: list[FoldEvent]
    ) -> None:
        state, _ = fold_apart(order, events)  # what no fold reads is set aside already
        rows = chunk.projection.rows(state)[chunk.place]
        timestamped = chunk.projection.tables[chunk.place].timestamped
        await session.copy_rows(
            chunk.table, chunk.columns, [(*r, self._now) if timestamped else r for r in rows]
        )

    async def finish(self) -> None:
        """Wait for the load in progress, if any."""
        loading, self._loading = self._loading, None
        if loading is not None:
            await loading


def shadow_of(table: str) -> str:
    """The table a rebuild fills before it is swapped in."""
    return f"{table}_replay"
