"""`verify` on a live ledger: appends committed while it reads never look like a
broken chain, and a real break is still found."""

from __future__ import annotations

import asyncio

import pytest

from events.appender import write
from events.connector import Database
from events.errors import ChainBroken
from events.store import verify_chains
from tests.factories import new_event

STREAMS = [f"order-live-{i}" for i in range(4)]


async def _append_until(db: Database, stop: asyncio.Event) -> int:
    written = 0
    while not stop.is_set():
        await write(db, [new_event(stream=s) for s in STREAMS])
        written += len(STREAMS)
    return written


async def test_verifying_while_writers_append_never_reports_a_break(db: Database) -> None:
    await write(db, [new_event(stream=s) for s in STREAMS])
    stop = asyncio.Event()
    writers = [asyncio.create_task(_append_until(db, stop)) for _ in range(3)]
    try:
        seen = []
        for _ in range(60):
            seen.append((await verify_chains(db)).events)
            seen.append((await verify_chains(db, STREAMS[0])).events)
    finally:
        stop.set()
        written = sum(await asyncio.gather(*writers))
    assert written > 0
    # The writers really appended while the checks ran: the counts grew.
    assert seen[-2] > seen[0]


async def test_a_removed_tail_is_still_found_in_one_snapshot(db: Database) -> None:
    await write(db, [new_event(stream="order-cut") for _ in range(3)])
    async with db.transaction() as session:
        await session.execute("ALTER TABLE streams DISABLE TRIGGER USER")
        await session.execute("UPDATE streams SET version = 4 WHERE stream = 'order-cut'")
        await session.execute("ALTER TABLE streams ENABLE TRIGGER USER")
    with pytest.raises(ChainBroken, match="recorded head does not match"):
        await verify_chains(db, "order-cut")
