"""A background job that dies of an unexpected error is started again by its
supervisor and goes on from its checkpoint: nothing skipped, nothing doubled."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

import events.consumer
from events.appender import write
from events.checkpoints import read_checkpoint
from events.connector import Database, Session
from events.consumer import ConsumerRunner
from events.model import RecordedEvent
from events.subscription import Subscription
from hookledger.supervisor import Supervisor
from tests.factories import new_event
from tests.support import until


class Recorder:
    name = "recorder"

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None:
        for event in events:
            await session.execute("INSERT INTO applied (position) VALUES (%s)", (event.position,))


class FailsOnce(Subscription):
    """A subscription whose follow loop meets a bug once, after a few batches."""

    failed = False

    async def batches(self) -> AsyncGenerator[list[RecordedEvent]]:
        taken = 0
        async for batch in super().batches():
            if taken == 3 and not FailsOnce.failed:
                FailsOnce.failed = True
                raise RuntimeError("a bug in the follow loop")
            taken += 1
            yield batch


async def test_a_job_killed_by_an_unexpected_error_is_restarted_and_skips_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction() as session:
        await session.execute("CREATE TABLE applied (position bigint PRIMARY KEY)")
    monkeypatch.setattr(events.consumer, "Subscription", FailsOnce)
    FailsOnce.failed = False
    await write(db, [new_event(stream=f"order-{i}") for i in range(40)])
    restarted: list[str] = []
    supervisor = Supervisor(on_restart=restarted.append, restart_base=0.05)
    runner = ConsumerRunner(db, Recorder(), batch_size=5, retry_interval=0.05)
    supervisor.start("recorder", runner.run)
    try:
        await until(lambda: _at(db, 40))
        await write(db, [new_event(stream=f"order-{i}") for i in range(40, 60)])
        await until(lambda: _at(db, 60))
        assert FailsOnce.failed
        assert restarted == ["recorder"]
        assert supervisor.down() == {}
    finally:
        await supervisor.stop()
    rows = await db.fetch_all("SELECT position FROM applied ORDER BY position")
    assert [r[0] for r in rows] == list(range(1, 61))


async def _at(db: Database, position: int) -> bool:
    return await read_checkpoint(db, "recorder") >= position
