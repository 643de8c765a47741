"""The task sync against a real database and a scripted Cloud Tasks client: the
answers the emulator cannot give (ALREADY_EXISTS, a failed call) and the
bookkeeping of which timer has a task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_errors

from events.connector import Database
from scheduler.cloudtasks import TaskQueue, TaskSync, TaskTarget, task_id

QUEUE = "projects/p/locations/l/queues/q"
DUE = datetime(2030, 1, 1, tzinfo=UTC)


class ScriptedClient:
    """Answers like Cloud Tasks: ``existing`` names are ALREADY_EXISTS, ``failing``
    ones UNAVAILABLE; deletes answer UNIMPLEMENTED, as the emulator does."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.existing: set[str] = set()
        self.failing: set[str] = set()

    async def create_task(self, *, parent: str, task: Any, **_: Any) -> Any:
        short = task.name.rsplit("/", 1)[-1]
        if short in self.failing:
            raise google_errors.ServiceUnavailable("try later")  # type: ignore[no-untyped-call]
        if short in self.existing:
            raise google_errors.AlreadyExists("task exists")  # type: ignore[no-untyped-call]
        self.created.append(short)
        return task

    async def delete_task(self, *, name: str, **_: Any) -> None:
        self.deleted.append(name.rsplit("/", 1)[-1])
        raise google_errors.MethodNotImplemented("no delete here")  # type: ignore[no-untyped-call]


class ScriptedQueue(TaskQueue):
    def __init__(self, client: ScriptedClient) -> None:
        super().__init__(QUEUE)
        self._client = client

    async def close(self) -> None:  # the client is the test's
        pass


def sync(db: Database, client: ScriptedClient) -> TaskSync:
    target = TaskTarget(queue=QUEUE, url="https://hookledger.example", secret=lambda: "s3cret")
    return TaskSync(db, ScriptedQueue(client), target)


async def add_timers(db: Database, *rows: tuple[str, str, datetime]) -> None:
    async with db.transaction() as session:
        for row in rows:
            await session.execute(
                "INSERT INTO countdown_timers (order_id, timer, due_at) VALUES (%s, %s, %s)", row
            )


async def held(db: Database) -> list[tuple[str, str]]:
    rows = await db.fetch_all("SELECT order_id, timer FROM timer_tasks ORDER BY order_id, timer")
    return [(r[0], r[1]) for r in rows]


async def test_each_timer_gets_one_task_named_by_its_timer_and_already_exists_counts_as_made(
    db: Database,
) -> None:
    client = ScriptedClient()
    client.existing.add(task_id("o-2", "expire", DUE))  # made before a crash
    await add_timers(db, ("o-1", "expire", DUE), ("o-2", "expire", DUE),
                     ("o-1", "reminder:x", DUE - timedelta(hours=1)))  # fmt: skip
    assert await sync(db, client).run_once() == 3
    assert sorted(client.created) == sorted(
        [task_id("o-1", "expire", DUE), task_id("o-1", "reminder:x", DUE - timedelta(hours=1))]
    )
    assert await held(db) == [("o-1", "expire"), ("o-1", "reminder:x"), ("o-2", "expire")]
    assert await sync(db, client).run_once() == 0  # nothing left to do
    assert len(client.created) == 2


async def test_a_task_not_made_is_tried_again_next_round(db: Database) -> None:
    client = ScriptedClient()
    client.failing.add(task_id("o-1", "expire", DUE))
    await add_timers(db, ("o-1", "expire", DUE))
    await sync(db, client).run_once()
    assert await held(db) == []
    client.failing.clear()
    await sync(db, client).run_once()
    assert client.created == [task_id("o-1", "expire", DUE)]
    assert await held(db) == [("o-1", "expire")]


async def test_a_moved_or_removed_timer_s_task_is_deleted_where_possible_and_let_go(
    db: Database,
) -> None:
    client = ScriptedClient()
    await add_timers(db, ("o-1", "expire", DUE), ("o-2", "expire", DUE))
    await sync(db, client).run_once()
    async with db.transaction() as session:
        await session.execute("DELETE FROM countdown_timers WHERE order_id = 'o-1'")
        await session.execute(  # put off for a pending verification
            "UPDATE countdown_timers SET due_at = due_at + interval '1 day' WHERE order_id = 'o-2'"
        )
    await sync(db, client).run_once()
    later = DUE + timedelta(days=1)
    assert sorted(client.deleted) == sorted(
        [task_id("o-1", "expire", DUE), task_id("o-2", "expire", DUE)]
    )
    assert client.created[-1] == task_id("o-2", "expire", later)
    assert await held(db) == [("o-2", "expire")]


async def test_one_sync_acts_at_a_time(db: Database) -> None:
    client = ScriptedClient()
    await add_timers(db, *[(f"o-{n}", "expire", DUE) for n in range(50)])
    first, second = await asyncio.gather(sync(db, client).run_once(), sync(db, client).run_once())
    assert sorted([first, second]) == [0, 50]  # the other skipped the round or found it done
    assert len(client.created) == 50
