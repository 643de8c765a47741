"""Group commit: one writer per process turns many concurrent appends into one
transaction, one flush, one NOTIFY."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from events.chain import GENESIS, event_hash
from events.connector import Connection, Database, Row, Statement
from events.errors import (
    AppenderStopped,
    DatabaseRefused,
    DatabaseUnavailable,
    HookledgerError,
    WriteConflict,
)
from events.model import AppendOutcome, NewEvent
from events.queries import QUERIES

log = logging.getLogger(__name__)

BatchObserver = Callable[[int, float], None]
"""Called after each committed batch with its size and its seconds."""

Key = tuple[str, str]


class _Pending:
    __slots__ = ("event", "future")

    def __init__(self, event: NewEvent, future: asyncio.Future[AppendOutcome]) -> None:
        self.event = event
        self.future = future


# Put on the queue by stop(): the writer finishes what came before it, then exits.
_STOP: list[_Pending] = []


class Appender:
    """Appends events; each ``append`` returns once its event is committed.

    With ``group_commit`` a single writer task drains whatever is queued (up to
    ``max_batch``) into one transaction. Without it, each append commits on its
    own: kept for comparison in the benchmark.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 512,
        group_commit: bool = True,
        observe: BatchObserver | None = None,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._group_commit = group_commit
        self._observe = observe
        self._queue: asyncio.Queue[list[_Pending]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._conn: Connection | None = None
        self._closing = False

    async def start(self) -> None:
        if self._group_commit and self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="hookledger-appender")

    async def stop(self) -> None:
        """Refuse new appends, finish every queued one, then close."""
        self._closing = True
        if self._writer is not None:
            await self._queue.put(_STOP)
            await self._writer
            self._writer = None
        await self._drop_connection()

    async def append(self, event: NewEvent) -> AppendOutcome:
        """Append one event and wait until it is durable (or known a duplicate)."""
        return (await self.append_many([event]))[0]

    async def append_many(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        """Append several events (one delivery's); they are written in the same batch."""
        if self._closing:
            raise AppenderStopped("the service is shutting down")
        loop = asyncio.get_running_loop()
        pending = [_Pending(event, loop.create_future()) for event in events]
        if not self._group_commit:
            await self._write_alone(pending)
        else:
            # One delivery's events stay together: they commit (or fail) as one.
            self._queue.put_nowait(pending)
        return [await item.future for item in pending]

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            unit = await self._queue.get()
            if unit is _STOP:
                break
            units, size = [unit], len(unit)
            while size < self._max_batch and not self._queue.empty():
                unit = self._queue.get_nowait()
                if unit is _STOP:
                    stopping = True
                    break
                units.append(unit)
                size += len(unit)
            await self._write_batch(units)

    async def _write_batch(self, units: list[list[_Pending]]) -> None:
        live = [p for unit in units for p in unit if not p.future.done()]
        if not live:
            return
        try:
            conn = await self._connection()
            started = time.perf_counter()
            outcomes = await write(conn, [p.event for p in live])
            self._observed(len(live), time.perf_counter() - started)
        except DatabaseUnavailable as exc:
            await self._drop_connection()
            log.warning("append batch failed", extra={"batch": len(live), "error": exc.detail})
            _fail(live, exc)
        except DatabaseRefused as exc:
            if len(units) == 1:
                log.error("append refused", extra={"batch": len(live), "error": exc.detail})
                _fail(live, exc)
                return
            # One bad delivery must not sink its neighbours: retry each delivery
            # alone (appends are idempotent by key; nothing of the batch was kept).
            log.warning("append batch refused, retrying one by one", extra={"batch": len(live)})
            for unit in units:
                await self._write_batch([unit])
        except Exception as exc:
            log.exception("append batch crashed", extra={"batch": len(live)})
            _fail(live, DatabaseRefused(f"{type(exc).__name__}: {exc}"))
        else:
            _resolve(live, outcomes)

    async def _write_alone(self, pending: list[_Pending]) -> None:
        try:
            started = time.perf_counter()
            outcomes = await write(self._db, [p.event for p in pending])
        except HookledgerError as exc:
            _fail(pending, exc)
        else:
            self._observed(len(pending), time.perf_counter() - started)
            _resolve(pending, outcomes)

    def _observed(self, size: int, seconds: float) -> None:
        if self._observe is not None:
            self._observe(size, seconds)

    async def _connection(self) -> Connection:
        if self._conn is None or self._conn.broken:
            await self._drop_connection()
            self._conn = await self._db.connect()
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except HookledgerError as exc:
                log.info("closing a failed connection", extra={"error": exc.detail})


def _fail(batch: list[_Pending], exc: Exception) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


def _resolve(batch: list[_Pending], outcomes: list[AppendOutcome]) -> None:
    for item, outcome in zip(batch, outcomes, strict=True):
        if not item.future.done():
            item.future.set_result(outcome)


OPTIMISTIC_ATTEMPTS = 3


async def write(target: Connection | Database, events: Sequence[NewEvent]) -> list[AppendOutcome]:
    """Append ``events`` in one transaction of two round trips, in order.

    The first round trip reads which keys are recorded and where the streams'
    chains end; the second takes the global append lock, inserts, and commits. So
    the lock is held only while Postgres works, never while this process
    computes. When another process appended to one of the streams (or recorded
    one of the keys) meanwhile, the unique constraints refuse the insert and the
    batch is prepared again; after a few such races the lock is taken in the
    first round trip already, which cannot race.
    """
    for attempt in range(1, OPTIMISTIC_ATTEMPTS + 2):
        batch = _BatchWrite(events, locked_read=attempt > OPTIMISTIC_ATTEMPTS)
        try:
            rows = await target.two_phase(batch.first_phase(), batch.second_phase)
        except WriteConflict:
            if batch.locked_read:
                raise
            continue
        return batch.outcomes(rows)
    raise AssertionError("unreachable: the locked attempt returns or raises")


class _BatchWrite:
    """One batch: what to ask first, what to write then, what to answer."""

    def __init__(self, events: Sequence[NewEvent], *, locked_read: bool) -> None:
        self.events = events
        self.locked_read = locked_read
        self.streams = sorted({e.stream for e in events})
        self.recorded: dict[Key, tuple[int, bytes]] = {}
        self.digests: dict[Key, bytes] = {}

    def first_phase(self) -> list[Statement]:
        providers = [e.provider for e in self.events]
        event_ids = [e.event_id for e in self.events]
        reads: list[Statement] = [
            (QUERIES["find_recorded"], (providers, event_ids)),
            (QUERIES["read_stream_heads"], (self.streams,)),
        ]
        return [(QUERIES["take_append_lock"], ()), *reads] if self.locked_read else reads

    def second_phase(self, rows: list[list[Row]]) -> list[Statement]:
        found, heads = rows[-2:]
        self.recorded = {(r[0], r[1]): (r[2], bytes(r[3])) for r in found}
        head: dict[str, tuple[int, str]] = {r[0]: (r[1], r[2]) for r in heads}
        recorded_at = datetime.now(UTC)

        columns: list[list[object]] = [[] for _ in range(12)]
        for event in self.events:
            key = (event.provider, event.event_id)
            if key in self.recorded or key in self.digests:
                continue
            digest = hashlib.sha256(event.raw).digest()
            self.digests[key] = digest
            version, prev_hash = head.get(event.stream, (0, GENESIS))
            version += 1
            hash_ = event_hash(
                prev_hash=prev_hash,
                stream=event.stream,
                stream_version=version,
                provider=event.provider,
                event_id=event.event_id,
                type=event.type,
                occurred_at=event.occurred_at,
                recorded_at=recorded_at,
                raw_sha256=digest.hex(),
            )
            head[event.stream] = (version, hash_)
            row = (
                event.provider, event.event_id, event.stream, version, event.type,
                event.occurred_at, recorded_at, event.payload_json.decode(), event.raw,
                msgspec.json.encode(event.metadata).decode(), prev_hash, hash_,
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        if not self.digests:
            return []
        touched = sorted(set(columns[2]), key=str)
        versions = [head[str(s)][0] for s in touched]
        hashes = [head[str(s)][1] for s in touched]
        return [
            (QUERIES["take_append_lock"], ()),
            (QUERIES["insert_events"], columns),
            (QUERIES["upsert_stream_heads"], (touched, versions, hashes)),
            (QUERIES["notify_appended"], ("",)),
        ]

    def outcomes(self, rows: list[list[Row]]) -> list[AppendOutcome]:
        positions: dict[Key, int] = {(r[1], r[2]): r[0] for r in rows[1]} if rows else {}
        outcomes: list[AppendOutcome] = []
        answered: set[Key] = set()
        for event in self.events:
            key = (event.provider, event.event_id)
            if key in self.recorded:
                position, digest = self.recorded[key]
                duplicate = True
            else:
                # Only the first occurrence of a key in this batch is new.
                position, digest = positions[key], self.digests[key]
                duplicate = key in answered
            answered.add(key)
            conflict = duplicate and digest != hashlib.sha256(event.raw).digest()
            outcomes.append(AppendOutcome(position, duplicate=duplicate, conflict=conflict))
        return outcomes
