"""Rebuild projections from position zero while the service keeps serving.

Rebuilds read one consistent snapshot of the ledger into shadow tables, then
swap them in under the projections' checkpoint locks, after applying whatever
the live runners had taken beyond the snapshot. Readers see the old tables until
the swap commits and the new ones after; no event is skipped or applied twice.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from events.checkpoints import advance_checkpoint, lock_checkpoint
from events.connector import Connection, Database
from projections.facts import FoldEvent
from projections.fold import fold
from projections.projectors import QUERIES, Projection, fold_streams

FLUSH_ROWS = 20_000


class ReplayReport(msgspec.Struct, frozen=True):
    projections: list[str]
    events: int
    orders: int
    position: int
    seconds: float


Progress = Callable[[int], None]


async def replay(
    db: Database, projections: Sequence[Projection], progress: Progress | None = None
) -> ReplayReport:
    """Rebuild ``projections`` together (one pass over the ledger) and swap them in."""
    started = time.perf_counter()
    async with db.transaction() as session:
        for projection in projections:
            for table in projection.tables:
                await session.execute_on(
                    QUERIES["create_shadow"], shadow=_shadow(table.name), live=table.name
                )
    try:
        with _without_gc():
            head, events, orders = await _build(db, projections, progress)
        await _swap(db, projections, head)
    except BaseException:
        async with db.transaction() as session:
            for projection in projections:
                for table in projection.tables:
                    await session.execute_on(QUERIES["drop_shadow"], shadow=_shadow(table.name))
        raise
    return ReplayReport(
        projections=[p.name for p in projections],
        events=events,
        orders=orders,
        position=head,
        seconds=time.perf_counter() - started,
    )


async def ledger_head(db: Database) -> int:
    """The position of the last event."""
    row = await db.fetch_one(QUERIES["head_position"])
    return int(row[0]) if row else 0


async def _build(
    db: Database, projections: Sequence[Projection], progress: Progress | None
) -> tuple[int, int, int]:
    events = orders = 0
    async with db.dedicated() as reader, db.dedicated() as writer_conn:
        writer = _ShadowWriter(projections, writer_conn)
        async with reader.transaction() as session:
            # One snapshot: the head read here and the rows read below agree.
            await session.execute(QUERIES["repeatable_read"])
            head_row = await session.fetch_one(QUERIES["head_position"])
            head = int(head_row[0]) if head_row else 0
            stream: str | None = None
            batch: list[FoldEvent] = []
            source = session.stream_batches(QUERIES["read_all_order_streams"], (head,), 10_000)
            async for rows in source:
                for row in rows:
                    if row[0] != stream:
                        if batch and stream is not None:
                            writer.add(stream, batch)
                            orders += 1
                            events += len(batch)
                        stream, batch = row[0], []
                    batch.append(FoldEvent(*row[1:]))
                if writer.pending >= FLUSH_ROWS:
                    await writer.flush()
                    if progress:
                        progress(events)
            if batch and stream is not None:
                writer.add(stream, batch)
                orders += 1
                events += len(batch)
        await writer.flush()
        await writer.finish()
        if progress:
            progress(events)
    return head, events, orders


class _ShadowWriter:
    """Buffers the rebuilt rows and COPYs them into the shadow tables, on a
    connection of its own so the server loads one chunk while we fold the next."""

    def __init__(self, projections: Sequence[Projection], conn: Connection) -> None:
        self._projections = projections
        self._conn = conn
        self._rows: list[list[list[Any]]] = [[[] for _ in p.tables] for p in projections]
        self.pending = 0
        self._now = datetime.now(UTC)
        self._loading: asyncio.Task[None] | None = None

    def add(self, stream: str, events: list[FoldEvent]) -> None:
        state = fold(stream.removeprefix("order-"), events)
        for projection, buckets in zip(self._projections, self._rows, strict=True):
            for bucket, rows in zip(buckets, projection.rows(state), strict=True):
                bucket.extend((*row, self._now) for row in rows)
                self.pending += len(rows)

    async def flush(self) -> None:
        """Start loading what is buffered (after the previous load is done)."""
        await self.finish()
        chunks = []
        for projection, buckets in zip(self._projections, self._rows, strict=True):
            for table, bucket in zip(projection.tables, buckets, strict=True):
                if bucket:
                    columns = table.columns + (("updated_at",) if table.timestamped else ())
                    rows = bucket if table.timestamped else [r[:-1] for r in bucket]
                    chunks.append((_shadow(table.name), columns, rows))
        self._rows = [[[] for _ in p.tables] for p in self._projections]
        self.pending = 0
        if chunks:
            self._loading = asyncio.create_task(self._load(chunks))
            await asyncio.sleep(0)  # let the load start before we get busy

    async def _load(self, chunks: list[tuple[str, tuple[str, ...], list[Any]]]) -> None:
        async with self._conn.transaction() as session:
            for table, columns, rows in chunks:
                await session.copy_rows(table, columns, rows)

    async def finish(self) -> None:
        """Wait for the load in progress, if any."""
        loading, self._loading = self._loading, None
        if loading is not None:
            await loading


async def _swap(db: Database, projections: Sequence[Projection], head: int) -> None:
    async with db.transaction() as session:
        # Holding the checkpoints keeps the live runners between batches until
        # the new tables are in and caught up.
        live = {p.name: await lock_checkpoint(session, p.consumer_name) for p in projections}
        for projection in projections:
            for table in projection.tables:
                await session.execute_on(
                    QUERIES["swap_in_shadow"],
                    live=table.name,
                    shadow=_shadow(table.name),
                    old=f"{table.name}_old",
                )
        furthest = max([head, *live.values()])
        if furthest > head:
            rows = await session.fetch_all(QUERIES["streams_after"], (head, furthest))
            states = await fold_streams(session, [r[0] for r in rows])
            for projection in projections:
                await projection.write(session, states)
        for projection in projections:
            await advance_checkpoint(session, projection.consumer_name, furthest)


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


def _shadow(table: str) -> str:
    return f"{table}_replay"
