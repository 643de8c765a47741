"""Ordered reads without gaps: a subscriber following concurrent writer processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import aclosing

from events.connector import Database
from events.store import read_after, verify_chains
from events.subscription import Subscription
from tests.factories import new_event
from tests.support import ROOT

WRITERS = 4
PER_WRITER = 600


async def test_subscriber_sees_every_event_of_concurrent_writers_once_in_replay_order(
    db: Database, database_url: str
) -> None:
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.writer_process",
            database_url,
            f"w{i}",
            str(PER_WRITER),
            cwd=ROOT,
        )
        for i in range(WRITERS)
    ]
    seen: list[int] = []
    ids: list[str] = []
    subscription = Subscription(db, batch_size=97, poll_interval=5.0)

    async def follow() -> None:
        # Closed on leaving, not whenever the collector finds it: it holds a
        # LISTEN connection of its own.
        async with aclosing(subscription.batches()) as batches:
            async for batch in batches:
                seen.extend(e.position for e in batch)
                ids.extend(e.event_id for e in batch)
                if len(seen) >= WRITERS * PER_WRITER:
                    return

    follower = asyncio.create_task(follow())
    codes = [await w.wait() for w in writers]
    assert codes == [0] * WRITERS
    await asyncio.wait_for(follower, 60)

    replay = await read_after(db, 0, limit=WRITERS * PER_WRITER + 10)
    assert seen == [e.position for e in replay], "subscriber order differs from a full read"
    assert len(set(ids)) == len(ids) == WRITERS * PER_WRITER
    assert (await verify_chains(db)).events == WRITERS * PER_WRITER


async def test_notify_wakes_subscriber_long_before_the_polling_fallback(db: Database) -> None:
    from events.appender import Appender

    subscription = Subscription(db, poll_interval=30.0)
    async with aclosing(subscription.batches()) as batches:
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.3)  # the subscriber is now listening and idle
        appender = Appender(db)
        await appender.start()
        await appender.append(new_event())
        await appender.stop()
        batch = await asyncio.wait_for(waiting, 10)
    assert len(batch) == 1


def test_writer_process_module_is_importable() -> None:
    # The race test starts writers with `python -m`; a broken import would hang it.
    result = subprocess.run(
        [sys.executable, "-c", "import tests.writer_process"], cwd=ROOT, check=False
    )
    assert result.returncode == 0
