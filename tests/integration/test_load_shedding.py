"""Load shedding: while the appender is behind (its writer stuck on a locked
ledger here), a new append is refused at once with Overloaded (503) once the
oldest waiting event has waited too long or too many wait; every append that
was accepted is still written, none twice."""

from __future__ import annotations

import asyncio

import pytest

from events.appender import Appender
from events.connector import Database
from events.errors import Overloaded
from tests.factories import new_event


async def blocked_ledger(db: Database) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Hold the append lock until the returned event is set."""
    release = asyncio.Event()
    held = asyncio.Event()

    async def hold() -> None:
        async with db.dedicated(autocommit=True) as conn, conn.transaction() as session:
            await session.execute("SELECT pg_advisory_xact_lock(7254910833)")
            held.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await held.wait()
    return task, release


@pytest.mark.parametrize(("max_queued", "max_wait"), [(1000, 0.3), (5, 60.0)],
                         ids=["oldest-wait", "depth"])  # fmt: skip
async def test_appends_beyond_the_bounds_are_refused_and_the_accepted_all_land(
    db: Database, max_queued: int, max_wait: float
) -> None:
    appender = Appender(db, max_queued=max_queued, max_wait=max_wait)
    await appender.start()
    holder, release = await blocked_ledger(db)
    try:
        first = asyncio.create_task(appender.append(new_event(stream="order-shed")))
        await asyncio.sleep(0.1)  # the writer took it and waits for the lock
        accepted = [asyncio.create_task(appender.append(new_event(stream="order-shed")))
                    for _ in range(min(max_queued, 5))]  # fmt: skip
        await asyncio.sleep(0.4 if max_wait < 1 else 0.05)
        with pytest.raises(Overloaded, match="nothing was recorded"):
            await appender.append(new_event(stream="order-shed"))
    finally:
        release.set()
        await holder
    outcomes = await asyncio.gather(first, *accepted)
    await appender.stop()
    assert len({o.position for o in outcomes}) == len(outcomes)
    rows = await db.fetch_all("SELECT count(*) FROM events WHERE stream = 'order-shed'")
    assert rows[0][0] == len(outcomes)
    # Caught up, it takes appends again.
    appender = Appender(db, max_queued=max_queued, max_wait=max_wait)
    await appender.start()
    assert (await appender.append(new_event(stream="order-shed"))).position > 0
    await appender.stop()
