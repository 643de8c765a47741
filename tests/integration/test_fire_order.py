"""What a countdown task finds in the database when it runs: its timer gone
(a duplicate or late task), moved (put off; another task stands for it), or not
due yet (an early task: Cloud Tasks must try again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.appender import Appender
from events.connector import Database
from scheduler.errors import NotDueYet
from scheduler.timers import fire_order


async def timer_due(db: Database, order: str, due: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            "INSERT INTO countdown_timers (order_id, timer, due_at) VALUES (%s, 'expire', %s)",
            (order, due),
        )


async def test_a_task_for_a_timer_no_longer_there_is_gone(db: Database) -> None:
    appender = Appender(db, group_commit=False)
    assert await fire_order(db, appender, "o-1", "expire", datetime.now(UTC)) == "gone"


async def test_a_task_whose_timer_was_put_off_is_moved_and_one_that_came_early_is_not_due(
    db: Database,
) -> None:
    appender = Appender(db, group_commit=False)
    later = datetime.now(UTC) + timedelta(hours=1)
    await timer_due(db, "o-1", later)
    earlier = later - timedelta(hours=2)
    assert await fire_order(db, appender, "o-1", "expire", earlier) == "moved"
    with pytest.raises(NotDueYet):
        await fire_order(db, appender, "o-1", "expire", later)
