"""The supervisor: a job that dies is started again, counted, and reported down
when it keeps dying; a job that has been up a while counts as recovered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hookledger.supervisor import DOWN_AFTER_DEATHS, STABLE_SECONDS, JobState, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (the supervisor has no event to wait on)
            await asyncio.sleep(0.001)


async def test_a_job_that_raises_is_started_again_and_counted() -> None:
    starts: list[int] = []
    restarted: list[str] = []
    back = asyncio.Event()

    async def job() -> None:
        starts.append(1)
        if len(starts) == 1:
            raise RuntimeError("a bug met once")
        back.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(on_restart=restarted.append, restart_base=0.001)
    supervisor.start("projection.orders", job)
    try:
        async with asyncio.timeout(5):
            await back.wait()
        assert restarted == ["projection.orders"]
        assert supervisor.jobs["projection.orders"].last_error == "RuntimeError: a bug met once"
        assert supervisor.down() == {}
    finally:
        await supervisor.stop()


async def test_a_job_that_keeps_dying_is_down_until_it_stays_up() -> None:
    clock = Clock()
    dying = True
    up = asyncio.Event()

    async def job() -> None:
        if dying:
            raise RuntimeError("still broken")
        up.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(restart_base=0.001, clock=clock)
    supervisor.start("timers", job)
    try:
        await until(lambda: supervisor.jobs["timers"].deaths_in_row >= DOWN_AFTER_DEATHS)
        assert supervisor.down() == {"timers": "RuntimeError: still broken"}
        dying = False
        async with asyncio.timeout(5):
            await up.wait()
        assert "timers" in supervisor.down()  # back, but not yet for long
        clock.now += STABLE_SECONDS
        assert supervisor.down() == {}
    finally:
        await supervisor.stop()


async def test_a_job_that_returns_is_a_death_too() -> None:
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)
        if len(calls) > 2:
            await asyncio.Event().wait()

    supervisor = Supervisor(restart_base=0.001)
    supervisor.start("actions", job)
    try:
        await until(lambda: len(calls) == 3)
        assert supervisor.jobs["actions"].restarts == 2
        assert supervisor.jobs["actions"].last_error == "the job returned"
    finally:
        await supervisor.stop()


async def test_stopping_cancels_every_job_and_restarts_none() -> None:
    cancelled: list[str] = []

    async def job() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("x")
            raise

    supervisor = Supervisor(restart_base=0.001)
    supervisor.start("a", job)
    supervisor.start("b", job)
    await asyncio.sleep(0)
    await supervisor.stop()
    assert cancelled == ["x", "x"]
    assert all(s.restarts == 0 for s in supervisor.jobs.values())


@pytest.mark.parametrize(
    ("deaths", "running", "up_for", "down"),
    [
        (DOWN_AFTER_DEATHS - 1, False, 0.0, False),
        (DOWN_AFTER_DEATHS, False, 0.0, True),
        (DOWN_AFTER_DEATHS, True, STABLE_SECONDS - 1, True),
        (DOWN_AFTER_DEATHS, True, STABLE_SECONDS, False),
    ],
)
def test_down_means_dying_often_and_not_yet_up_for_long(
    deaths: int, running: bool, up_for: float, down: bool
) -> None:
    state = JobState("job", running=running, started_at=0.0, deaths_in_row=deaths)
    assert state.down(now=up_for) is down
