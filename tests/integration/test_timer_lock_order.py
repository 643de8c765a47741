"""The timer worker and the countdowns projection lock timer rows without
deadlocking: the worker writes only the rows it claimed (and the rows a claim
waits for are locked in key order, see the queries)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from events.appender import Appender, write
from events.connector import Database, Session
from projections.projectors import QUERIES as PROJECTION_QUERIES
from scheduler.countdown import decision
from scheduler.timers import QUERIES as TIMER_QUERIES
from scheduler.timers import decide_due

ORDER = "lock-1"


async def _running_countdown(db: Database, now: datetime) -> datetime:
    """An order 50 hours into its 72-hour window: its first reminder is due, its
    expiry is not. Returns the expiry."""
    started = now - timedelta(hours=50)
    due = started + timedelta(hours=72)
    reminders = [due - timedelta(hours=24), due - timedelta(hours=1)]
    payload = {
        "order_id": ORDER,
        "started_at": started.isoformat(),
        "due_at": due.isoformat(),
        "reminders": [r.isoformat() for r in reminders],
        "window_seconds": 72 * 3600.0,
        "grace_seconds": 24 * 3600.0,
    }
    started_event = decision(
        ORDER, f"countdown.started:{ORDER}", "countdown.started", payload, started
    )
    await write(db, [started_event])
    async with db.transaction() as session:
        await session.execute(
            "INSERT INTO countdown_timers (order_id, timer, due_at) VALUES (%s, 'expire', %s),"
            " (%s, %s, %s)",
            (ORDER, due, ORDER, f"reminder:{reminders[0].isoformat()}", reminders[0]),
        )
    return due


async def _waiting_on_a_lock(db: Database) -> None:
    async with asyncio.timeout(10):
        while not await db.fetch_one(  # noqa: ASYNC110 (another session's state)
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ):
            await asyncio.sleep(0.02)


async def test_a_worker_firing_a_reminder_while_the_projection_rewrites_the_timers(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    expiry = await _running_countdown(db, now)
    appender = Appender(db, group_commit=False)
    await appender.start()
    try:
        async with db.transaction() as worker:
            rows = await worker.fetch_all(TIMER_QUERIES["claim_timers"], (0.0, 100))
            assert [r[1] for r in rows] == [
                f"reminder:{(expiry - timedelta(hours=24)).isoformat()}"
            ]

            async def rewrite(session: Session) -> None:
                await session.execute(PROJECTION_QUERIES["delete_timers"], [[ORDER]])

            projection = asyncio.create_task(_in_transaction(db, rewrite))
            await _waiting_on_a_lock(db)  # the projection waits on the claimed reminder
            decided = await decide_due(worker, appender, rows)
        assert decided == ["countdown.reminder_due"]
        await asyncio.wait_for(projection, timeout=10)
    finally:
        await appender.stop()
    assert await db.fetch_all("SELECT * FROM countdown_timers") == []


async def _in_transaction(db: Database, work: Callable[[Session], Awaitable[None]]) -> None:
    async with db.transaction() as session:
        await work(session)
