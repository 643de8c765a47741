"""One runtime for `serve` and `worker`: the database, migrations, appender,
background work and secret refresh start in that order and stop in reverse."""

from __future__ import annotations

import asyncio

import pytest

from events.connector import Database
from events.errors import AppenderStopped
from events.store import read_stream
from hookledger.settings import Settings
from hookledger.wiring import build_runtime
from tests.factories import new_event


def _running_tasks() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()}


async def test_a_runtime_appends_while_it_runs_and_refuses_once_it_has_stopped(
    database_url: str,
) -> None:
    runtime = build_runtime(Settings(background=False), database_url)
    event = new_event(stream="order-runtime")
    async with runtime.running():
        assert (await runtime.appender.append(event)).position > 0
        assert "hookledger-appender" in _running_tasks()
    assert "hookledger-appender" not in _running_tasks()
    with pytest.raises(AppenderStopped):
        await runtime.appender.append(new_event())
    db = Database(database_url, max_size=1)
    await db.open()
    try:
        assert [e.event_id for e in await read_stream(db, "order-runtime")] == [event.event_id]
    finally:
        await db.close()


async def test_the_background_work_runs_inside_the_runtime_until_after_its_closers(
    database_url: str,
) -> None:
    runtime = build_runtime(Settings(), database_url)
    seen_by_closer: set[str] = set()

    async def close() -> None:
        seen_by_closer.update(_running_tasks())

    runtime.close_on_stop(close)
    async with runtime.running():
        assert {"timers", "actions"} <= _running_tasks()
    assert {"timers", "actions"} <= seen_by_closer
    assert not {"timers", "actions"} & _running_tasks()


async def test_a_runtime_told_to_leave_the_background_work_builds_none(database_url: str) -> None:
    assert build_runtime(Settings(), database_url, background=False).background is None
    assert build_runtime(Settings(background=False), database_url).background is None
    assert build_runtime(Settings(background=False), database_url, background=True).background
