"""Rebuild projections from position zero while the service keeps serving.

Rebuilds read one consistent snapshot of the ledger into shadow tables, then
swap them in under the projections' checkpoint locks, after applying whatever
the live runners had taken beyond the snapshot. Readers see the old tables until
the swap commits and the new ones after; no event is skipped or applied twice.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Sequence
from multiprocessing.queues import Queue
from typing import Any

import msgspec

from events.checkpoints import advance_checkpoint, lock_checkpoint
from events.connector import Database
from events.errors import ReplayFailed
from events.progress import Progress
from events.quarantine import release, set_aside
from projections.partition import (
    PartitionDone,
    PartitionJob,
    build_partition,
    run_in_process,
    shadow_of,
)
from projections.projectors import QUERIES, Projection, fold_streams_apart


class ReplayReport(msgspec.Struct, frozen=True):
    projections: list[str]
    events: int
    orders: int
    position: int
    seconds: float
    set_aside: int = 0  # events no fold could read, quarantined for each projection


async def replay(
    db: Database,
    projections: Sequence[Projection],
    progress: Progress | None = None,
    *,
    parts: int | None = None,
) -> ReplayReport:
    """Rebuild ``projections`` together (one pass over the ledger) and swap them in.

    The ledger is read in ``parts`` partitions by stream, each folded in a process
    of its own (default: one per CPU); ``parts=1`` folds in this process.
    """
    parts = parts or os.cpu_count() or 1
    started = time.perf_counter()
    async with db.transaction() as session:
        for projection in projections:
            for table in projection.tables:
                await session.execute_on(
                    QUERIES["create_shadow"], shadow=shadow_of(table.name), live=table.name
                )
    try:
        head, events, orders, apart = await _build(db, projections, progress, parts)
        await _swap(db, projections, head, apart)
    except BaseException:
        async with db.transaction() as session:
            for projection in projections:
                for table in projection.tables:
                    await session.execute_on(QUERIES["drop_shadow"], shadow=shadow_of(table.name))
        raise
    return ReplayReport(
        projections=[p.name for p in projections],
        events=events,
        orders=orders,
        position=head,
        seconds=time.perf_counter() - started,
        set_aside=len({position for _, position, _, _ in apart}),
    )


async def ledger_head(db: Database) -> int:
    """The position of the last event."""
    row = await db.fetch_one(QUERIES["head_position"])
    return int(row[0]) if row else 0


async def _build(
    db: Database, projections: Sequence[Projection], progress: Progress | None, parts: int
) -> tuple[int, int, int, list[tuple[str, int, str, str]]]:
    async with db.dedicated() as conn, conn.transaction() as session:
        # One snapshot, held until every partition has read it: the head read
        # here and the rows the partitions read agree.
        await session.execute(QUERIES["repeatable_read"])
        head_row = await session.fetch_one(QUERIES["head_position"])
        head = int(head_row[0]) if head_row else 0
        snapshot_row = await session.fetch_one(QUERIES["export_snapshot"])
        assert snapshot_row is not None
        names = [p.name for p in projections]
        jobs = [PartitionJob(db.url, snapshot_row[0], head, k, parts, names) for k in range(parts)]
        counted = _Counted(progress)
        if parts == 1:
            done = [await build_partition(jobs[0], counted.reached)]
        else:
            done = await _in_processes(jobs, counted)
    apart = [item for d in done for item in d.set_aside]
    return head, sum(d.events for d in done), sum(d.orders for d in done), apart


async def _in_processes(jobs: list[PartitionJob], counted: _Counted) -> list[PartitionDone]:
    """Run each partition in a process of its own; report their summed progress."""
    context = multiprocessing.get_context("spawn")
    queues: list[Queue[Any]] = [context.Queue() for _ in jobs]
    processes = [
        context.Process(target=run_in_process, args=(job, queue), daemon=True)
        for job, queue in zip(jobs, queues, strict=True)
    ]
    for process in processes:
        process.start()
    seen = [0] * len(jobs)
    done: list[PartitionDone | None] = [None] * len(jobs)
    try:
        while any(d is None for d in done):
            await asyncio.sleep(0.2)
            for k, queue in enumerate(queues):
                while not queue.empty():
                    kind, value = queue.get()
                    if kind == "progress":
                        seen[k] = value
                    elif kind == "done":
                        done[k] = msgspec.json.decode(value, type=PartitionDone)
                    else:
                        raise ReplayFailed(f"partition {k} of the rebuild failed: {value}")
                if done[k] is None and not processes[k].is_alive() and queue.empty():
                    raise ReplayFailed(f"partition {k} of the rebuild died")
            counted.reached(sum(seen))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return [d for d in done if d is not None]


class _Counted:
    """Partitions report how many events they have done so far; ``Progress``
    wants how many more."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._done = 0

    def reached(self, events: int) -> None:
        if self._progress is not None and events > self._done:
            self._progress.advance(events - self._done)
        self._done = max(self._done, events)


async def _swap(
    db: Database,
    projections: Sequence[Projection],
    head: int,
    apart: list[tuple[str, int, str, str]],
) -> None:
    """Swap the shadow tables in, caught up with the live runners; the rebuild
    applied every event up to ``head`` again, so what the projections had set
    aside up to there is forgotten and what the rebuild could not read set aside."""
    async with db.transaction() as session:
        # Holding the checkpoints keeps the live runners between batches until
        # the new tables are in and caught up.
        live = {p.name: await lock_checkpoint(session, p.consumer_name) for p in projections}
        for projection in projections:
            for table in projection.tables:
                await session.execute_on(
                    QUERIES["swap_in_shadow"],
                    live=table.name,
                    shadow=shadow_of(table.name),
                    old=f"{table.name}_old",
                )
        furthest = max([head, *live.values()])
        if furthest > head:
            rows = await session.fetch_all(QUERIES["streams_after"], (head, furthest))
            states, later = await fold_streams_apart(session, [r[0] for r in rows])
            apart = [*apart, *((p.consumer_name, e.position, e.event_id, error)
                               for e, error in later for p in projections)]  # fmt: skip
            for projection in projections:
                await projection.write(session, states)
        names = [p.consumer_name for p in projections]
        await release(session, names, head)
        for name, position, event_id, error in apart:
            await set_aside(session, name, position, event_id, error)
        for name in names:
            await advance_checkpoint(session, name, furthest)
        await session.execute(QUERIES["regrant_projections"])
