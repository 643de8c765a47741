"""A consumer runner: one active runner per name, each event applied once."""

from __future__ import annotations

import asyncio

import pytest

from events.appender import write
from events.checkpoints import consumer_lags, lock_checkpoint, read_checkpoint
from events.connector import Database, Session
from events.consumer import ConsumerRunner
from events.errors import CheckpointMoved
from events.leases import leased
from events.model import RecordedEvent
from tests.factories import new_event
from tests.support import until


class Recorder:
    """Writes every event it applies into a table, so a double apply shows."""

    name = "recorder"

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None:
        for event in events:
            await session.execute("INSERT INTO applied (position) VALUES (%s)", (event.position,))
            if event.position == self.fail_at:
                self.fail_at = None
                raise CheckpointMoved("simulated crash in the middle of a batch")


@pytest.fixture
async def applied_table(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute("CREATE TABLE applied (position bigint PRIMARY KEY)")


async def applied_positions(db: Database) -> list[int]:
    return [r[0] for r in await db.fetch_all("SELECT position FROM applied ORDER BY position")]


@pytest.mark.usefixtures("applied_table")
async def test_two_runners_apply_every_event_once_and_a_failed_batch_is_redone(
    db: Database,
) -> None:
    await write(db, [new_event(stream=f"order-{i}") for i in range(50)])
    first = ConsumerRunner(db, Recorder(fail_at=30), batch_size=7, retry_interval=0.1)
    second = ConsumerRunner(db, Recorder(), batch_size=7, retry_interval=0.1)
    tasks = [asyncio.create_task(r.run()) for r in (first, second)]
    try:
        await until(lambda: _at(db, 50))
        await write(db, [new_event(stream=f"order-{i}") for i in range(50, 80)])
        await until(lambda: _at(db, 80))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await applied_positions(db) == list(range(1, 81))


@pytest.mark.usefixtures("applied_table")
async def test_a_runner_takes_over_when_the_holder_lets_go(db: Database) -> None:
    await write(db, [new_event(stream=f"order-{i}") for i in range(5)])
    async with leased(db, "recorder") as held:
        assert held is not None
        runner = ConsumerRunner(db, Recorder(), retry_interval=0.05)
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.5)
        assert await read_checkpoint(db, "recorder") == 0
        assert not runner.active
    try:
        await until(lambda: _at(db, 5))
        assert runner.active
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_read_from_a_stale_checkpoint_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        await lock_checkpoint(session, "stale")
        await session.execute("UPDATE checkpoints SET position = 9 WHERE name = 'stale'")
    with pytest.raises(CheckpointMoved):
        async with db.transaction() as session:
            await lock_checkpoint(session, "stale", expected=3)


async def test_lag_counts_the_events_a_consumer_has_still_to_take(db: Database) -> None:
    await write(db, [new_event(stream=f"order-{i}") for i in range(4)])
    async with db.transaction() as session:
        await lock_checkpoint(session, "behind")
    lags = {lag.name: lag for lag in await consumer_lags(db)}
    assert lags["behind"].events == 4
    assert lags["behind"].seconds >= 0


async def _at(db: Database, position: int) -> bool:
    return await read_checkpoint(db, "recorder") >= position
