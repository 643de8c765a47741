"""Reads of the ledger: a stream, everything after a position, chain checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from events.chain import personal_problem, verify_stream
from events.connector import Database, Row, Session
from events.errors import ChainBroken
from events.model import EventHead, RecordedEvent
from events.queries import QUERIES


def to_event(row: Row) -> RecordedEvent:
    """Build an event from a row of the ledger's standard column list."""
    (position, provider, event_id, stream, version, type_, occurred_at, recorded_at,
     payload, raw, metadata, prev_hash, hash_, hash_rule, personal, held) = row  # fmt: skip
    return RecordedEvent(
        position=position,
        provider=provider,
        event_id=event_id,
        stream=stream,
        stream_version=version,
        type=type_,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        payload=payload,
        raw=bytes(raw),
        metadata=metadata,
        prev_hash=prev_hash,
        hash=hash_,
        hash_rule=hash_rule,
        personal=personal,
        held=held,
    )


async def read_stream(db: Database, stream: str) -> list[RecordedEvent]:
    """One stream's events in version order."""
    return [to_event(r) for r in await db.fetch_all(QUERIES["read_stream"], (stream,))]


async def read_after(db: Database, position: int, limit: int = 1000) -> list[RecordedEvent]:
    """Up to ``limit`` events after ``position``, in position order.

    Appends are serialised by the append lock, so positions become visible in
    order and this read never skips an event that commits later.
    """
    rows = await db.fetch_all(QUERIES["read_after"], (position, limit))
    return [to_event(r) for r in rows]


async def read_heads_after(db: Database, position: int, limit: int = 1000) -> list[EventHead]:
    """``read_after``, only the heads of the events (no body, no chain)."""
    rows = await db.fetch_all(QUERIES["read_heads_after"], (position, limit))
    return [EventHead(*r) for r in rows]


class VerifyReport(msgspec.Struct, frozen=True):
    streams: int
    events: int


async def verify_chains(db: Database, stream: str | None = None) -> VerifyReport:
    """Recompute every chain (or one stream's); raise ChainBroken at the first break.

    Also checks each stream's recorded head, so a removed tail is found too.
    """
    streams = events = 0
    # Heads and events from one snapshot: an append committed between two reads
    # would otherwise look like a head that does not match its chain.
    async with db.snapshot() as session:
        if stream is None:
            rows = await session.fetch_all(QUERIES["stream_heads"])
        else:
            rows = await session.fetch_all(QUERIES["stream_head"], (stream,))
        heads: dict[str, tuple[int, str]] = {r[0]: (r[1], r[2]) for r in rows}
        if stream is None:
            source = session.stream_rows(QUERIES["read_all_by_stream"])
        else:
            source = session.stream_rows(QUERIES["read_stream"], (stream,))
        async for name, chunk in _by_stream(source):
            count = verify_stream(chunk)
            head = heads.pop(name, None)
            if head is None or head != (count, chunk[-1].hash):
                raise ChainBroken(name, count, "the stream's recorded head does not match")
            streams += 1
            events += count
        for name, (version, _) in sorted(heads.items()):
            raise ChainBroken(name, 1, f"the head says {version} events, the ledger has none")
        await _verify_held(session, stream)
    return VerifyReport(streams=streams, events=events)


async def _verify_held(session: Session, stream: str | None) -> None:
    """Every personal value still held is the one its event's chained entry
    committed to, and the payload read with it is the skeleton's JSON value."""
    if stream is None:
        rows = session.stream_rows(QUERIES["held_personal_events"])
    else:
        rows = session.stream_rows(QUERIES["held_personal_events_of_stream"], (stream,))
    async for name, version, raw, payload, entries, ns, salts, values in rows:
        held = {int(n): (bytes(s), bytes(v)) for n, s, v in zip(ns, salts, values, strict=True)}
        try:
            problem = personal_problem(bytes(raw), entries or [], held, payload)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"personal entries unreadable: {exc}"
        if problem is not None:
            raise ChainBroken(name, int(version), problem)


async def _by_stream(rows: AsyncIterator[Any]) -> AsyncIterator[tuple[str, list[RecordedEvent]]]:
    current: list[RecordedEvent] = []
    async for row in rows:
        event = to_event(row)
        if current and current[0].stream != event.stream:
            yield current[0].stream, current
            current = []
        current.append(event)
    if current:
        yield current[0].stream, current
