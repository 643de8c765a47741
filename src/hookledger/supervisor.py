"""Background jobs watched over: one that ends (they run until cancelled, so any
end is a failure) is logged, counted and started again after a backoff, and a job
that keeps dying is reported down, so that `/health` and `/__selftest` say so
instead of hiding a dead job behind a live process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from events.retry import Backoff

log = logging.getLogger(__name__)

# A job that ran this long before it died is taken to have recovered: the next
# death starts the count (and the backoff) afresh.
STABLE_SECONDS = 30.0
# Deaths in a row, each before STABLE_SECONDS, after which a job is down.
DOWN_AFTER_DEATHS = 3
# The longest wait before a restart.
RESTART_CAP_SECONDS = 30.0

JobFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class JobState:
    """What is known of one job: run by the supervisor, or a process of its own
    that serve starts again (``pid``, wall-clock times, shared through a file)."""

    name: str
    running: bool = False
    started_at: float = 0.0
    deaths_in_row: int = 0
    restarts: int = 0
    last_error: str = ""
    pid: int = 0

    def down(self, now: float) -> bool:
        """Dead too often in a row, and not yet up long enough to count as back."""
        if self.deaths_in_row < DOWN_AFTER_DEATHS:
            return False
        return not (self.running and now - self.started_at >= STABLE_SECONDS)

    def died(self, now: float, error: str) -> bool:
        """Count a death at ``now``; True when the job had run long enough to
        count as recovered first (its backoff then starts afresh)."""
        self.running = False
        self.last_error = error
        recovered = now - self.started_at >= STABLE_SECONDS
        if recovered:
            self.deaths_in_row = 0
        self.deaths_in_row += 1
        return recovered


class Supervisor:
    """Runs named jobs until stopped, restarting each one that ends."""

    def __init__(
        self,
        *,
        on_restart: Callable[[str], None] | None = None,
        restart_base: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs: dict[str, JobState] = {}
        self._on_restart = on_restart
        self._restart_base = restart_base
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, factory: JobFactory) -> None:
        """Run ``factory()`` as job ``name``, made anew after each death."""
        state = self.jobs[name] = JobState(name)
        self._tasks.append(asyncio.create_task(self._watch(state, factory), name=name))

    async def stop(self) -> None:
        """Cancel every job and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def down(self) -> dict[str, str]:
        """The jobs that are down, each with its last error."""
        now = self._clock()
        return {s.name: s.last_error for s in self.jobs.values() if s.down(now)}

    def restarting(self) -> dict[str, str]:
        """The jobs waiting to be started again (down or not), with their last error."""
        return {s.name: s.last_error for s in self.jobs.values() if not s.running}

    async def _watch(self, state: JobState, factory: JobFactory) -> None:
        backoff = Backoff(state.name, self._restart_base, RESTART_CAP_SECONDS)
        while True:
            state.running, state.started_at = True, self._clock()
            try:
                await factory()
                error = "the job returned"
            except asyncio.CancelledError:
                state.running = False
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("background job died", extra={"job": state.name})
            if state.died(self._clock(), error):
                backoff.reset()
            delay = backoff.next()
            level = logging.ERROR if state.down(self._clock()) else logging.WARNING
            context = {"job": state.name, "in_seconds": round(delay, 3),
                       "deaths_in_row": state.deaths_in_row, "error": state.last_error}  # fmt: skip
            log.log(level, "background job restarts", extra=context)
            await asyncio.sleep(delay)
            state.restarts += 1
            if self._on_restart is not None:
                self._on_restart(state.name)
