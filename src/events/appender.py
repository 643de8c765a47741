"""Group commit: one writer per process turns many concurrent appends into one
transaction, one flush, one NOTIFY."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from events.chain import CURRENT_RULE, GENESIS, canonical_entries, event_hash
from events.connector import Connection, Database, Row, Session
from events.errors import (
    AppenderStopped,
    DatabaseRefused,
    DatabaseUnavailable,
    HookledgerError,
    Overloaded,
    WriteConflict,
)
from events.model import AppendOutcome, Cutter, NewEvent
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
        max_queued: int = 10_000,
        max_wait: float = 2.0,
        derived: bool = False,
        cutter: Cutter | None = None,
    ) -> None:
        self._db = db
        # The personal-data policy, applied to each event as it is written.
        self._cutter = cutter
        # Appends of derived events (decisions a consumer makes again after a
        # crash, under fixed ids) commit without waiting for the disk: the append
        # lock is then held for Postgres's work only, not for a flush, and the
        # intake's appends wait less behind them. The WAL is written in order, so
        # any later durable commit (an acknowledged webhook, a signed checkpoint)
        # makes them durable too, and nothing outside the database sees them first.
        self._derived = derived
        self._max_batch = max_batch
        self._group_commit = group_commit
        self._observe = observe
        self._queue: asyncio.Queue[list[_Pending]] = asyncio.Queue()
        # Load shedding: how many events wait for the writer, since when each
        # unit waits (in queue order), and the bounds beyond which new appends
        # are refused at once rather than queued past the senders' timeouts.
        self._queued_events = 0
        self._queued_since: deque[float] = deque()
        self._max_queued = max_queued
        self._max_wait = max_wait
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
            self._shed_if_behind()
            # One delivery's events stay together: they commit (or fail) as one.
            self._queue.put_nowait(pending)
            self._queued_events += len(pending)
            self._queued_since.append(time.monotonic())
        return [await item.future for item in pending]

    def _shed_if_behind(self) -> None:
        waited = time.monotonic() - self._queued_since[0] if self._queued_since else 0.0
        if self._queued_events >= self._max_queued or waited > self._max_wait:
            raise Overloaded(
                f"the intake is behind ({self._queued_events} events wait, the oldest "
                f"{waited:.1f} s): nothing was recorded; retry shortly"
            )

    def _taken(self, unit: list[_Pending]) -> None:
        """The writer took ``unit`` off the queue."""
        self._queued_events -= len(unit)
        self._queued_since.popleft()

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            unit = await self._queue.get()
            if unit is _STOP:
                break
            self._taken(unit)
            units, size = [unit], len(unit)
            while size < self._max_batch and not self._queue.empty():
                unit = self._queue.get_nowait()
                if unit is _STOP:
                    stopping = True
                    break
                self._taken(unit)
                units.append(unit)
                size += len(unit)
            await self._write_batch(units)

    async def _write_batch(self, units: list[list[_Pending]], *, again: bool = True) -> None:
        live = [p for unit in units for p in unit if not p.future.done()]
        if not live:
            return
        # A connection kept from an earlier batch may have died in between (a
        # database restart): found out only now, it is worth one fresh try.
        kept = self._conn is not None and not self._conn.broken
        try:
            conn = await self._connection()
            started = time.perf_counter()
            outcomes = await write(conn, [p.event for p in live], self._cutter)
            self._observed(len(live), time.perf_counter() - started)
        except DatabaseUnavailable as exc:
            await self._drop_connection()
            if kept and again:
                # Appends are idempotent by key: whatever the dead connection
                # committed is answered as a resend.
                log.info("append connection lost; trying a fresh one",
                         extra={"batch": len(live), "error": exc.detail})  # fmt: skip
                await self._write_batch(units, again=False)
                return
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
            outcomes = await write(self._db, [p.event for p in pending], self._cutter)
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
            self._conn = await self._db.connect_writer(durable=not self._derived)
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


async def write(
    target: Connection | Database | Session,
    events: Sequence[NewEvent],
    cutter: Cutter | None = None,
) -> list[AppendOutcome]:
    """Append ``events`` atomically, in order (on a pooled connection when given
    the database; a dedicated connection must be in autocommit).

    One statement reads which keys are recorded and where the streams' chains
    end; one INSERT writes the batch as its own transaction. The database takes
    the append lock and moves the stream heads inside that INSERT (migration
    0007), so the lock is held only while Postgres works, never while this
    process computes. When another process appended to one of the streams (or
    recorded one of the keys) in between, the unique constraints refuse the
    insert and the batch is prepared again; after a few such races the lock is
    taken before the read, in one transaction, which cannot race.

    Given a session (a transaction already open), it takes the lock first and
    writes inside that transaction.
    """
    if isinstance(target, Database):
        async with target.connection() as conn:
            return await write(conn, events, cutter)
    if isinstance(target, Session):
        await target.execute(QUERIES["take_append_lock"])
        batch = await _BatchWrite.read(target, events, cutter)
        return batch.outcomes(await batch.insert(target))
    for _ in range(OPTIMISTIC_ATTEMPTS):
        session = target.session()
        batch = await _BatchWrite.read(session, events, cutter)
        try:
            rows = await batch.insert(session)
        except WriteConflict:
            continue
        return batch.outcomes(rows)
    async with target.transaction() as session:
        await session.execute(QUERIES["take_append_lock"])
        batch = await _BatchWrite.read(session, events, cutter)
        rows = await batch.insert(session)
    return batch.outcomes(rows)


_encode_rows = msgspec.json.Encoder().encode


class _BatchWrite:
    """One batch: what to read first, what to insert then, what to answer."""

    def __init__(self, events: Sequence[NewEvent], cutter: Cutter | None) -> None:
        self.events = events
        # Each event as it is recorded: its personal values cut out (or None).
        self.cuts = [cutter.cut(e) if cutter is not None else None for e in events]
        self.recorded: dict[Key, tuple[int, bytes]] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.digests: dict[Key, bytes] = {}

    @classmethod
    async def read(
        cls, session: Session, events: Sequence[NewEvent], cutter: Cutter | None
    ) -> _BatchWrite:
        """A batch of ``events`` that knows which of its keys are recorded already
        and where its streams' chains end."""
        if cutter is not None:
            await cutter.ready(session)
        batch = cls(events, cutter)
        streams = sorted({e.stream for e in events})
        params = ([e.provider for e in events], [e.event_id for e in events], streams)
        for kind, name, detail, number, digest in await session.fetch_all(
            QUERIES["read_batch_state"], params
        ):
            if kind == "recorded":
                batch.recorded[name, detail] = (number, bytes(digest))
            else:
                batch.heads[name] = (number, detail)
        return batch

    async def insert(self, session: Session) -> list[Row]:
        """Insert the events not recorded yet; their (position, provider, event_id)."""
        head = dict(self.heads)
        recorded_at = datetime.now(UTC)
        self.digests = {}
        rows: list[dict[str, Any]] = []
        values: list[dict[str, Any]] = []
        for event, cut in zip(self.events, self.cuts, strict=True):
            key = (event.provider, event.event_id)
            if key in self.recorded or key in self.digests:
                continue
            raw = cut.raw if cut is not None else event.raw
            digest = hashlib.sha256(raw).digest()
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
                metadata=event.metadata,
                personal=canonical_entries(cut.entries) if cut is not None else "[]",
            )
            head[event.stream] = (version, hash_)
            # The keys are insert_events' column names; the raw bytes go as base64.
            row = {
                "provider": event.provider, "event_id": event.event_id, "stream": event.stream,
                "stream_version": version, "type": event.type, "occurred_at": event.occurred_at,
                "recorded_at": recorded_at,
                "payload": msgspec.Raw(cut.payload_json if cut else event.payload_json),
                "raw": raw, "metadata": event.metadata, "prev_hash": prev_hash,
                "hash": hash_, "hash_rule": CURRENT_RULE,
                "personal": cut.entries if cut is not None else None,
            }  # fmt: skip
            rows.append(row)
            if cut is not None:
                values += cut.values
        if not rows:
            return []
        document = _encode_rows(rows).decode()
        if not values:
            return await session.fetch_all(QUERIES["insert_events"], (document,))
        # The values go in the same statement as their events: both or neither.
        held = _encode_rows(values).decode()
        return await session.fetch_all(QUERIES["insert_events_and_values"], (document, held))

    def outcomes(self, rows: list[Row]) -> list[AppendOutcome]:
        positions: dict[Key, int] = {(r[1], r[2]): r[0] for r in rows}
        outcomes: list[AppendOutcome] = []
        answered: set[Key] = set()
        for event, cut in zip(self.events, self.cuts, strict=True):
            key = (event.provider, event.event_id)
            if key in self.recorded:
                position, digest = self.recorded[key]
                duplicate = True
            else:
                # Only the first occurrence of a key in this batch is new.
                position, digest = positions[key], self.digests[key]
                duplicate = key in answered
            answered.add(key)
            # The skeletons compared: a resend that differs only in a personal
            # value is not told apart (nothing kept could tell it, once erased).
            raw = cut.raw if cut is not None else event.raw
            conflict = duplicate and digest != hashlib.sha256(raw).digest()
            outcomes.append(AppendOutcome(position, duplicate=duplicate, conflict=conflict))
        return outcomes
