"""One retry policy for the loops that wait after a failure: delays doubling from
a base up to a cap, each drawn from the upper half of its range, so that delays
never shrink and processes failing together spread out. Only the caller knows
whether what failed is safe to try again; this module only says how long to wait."""

from __future__ import annotations

import asyncio
import random

# Waiting for a database that went away: short enough that service resumes
# within seconds of its return, long enough not to hammer it while it is down.
DATABASE_RETRY_CAP = 5.0


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first):
    between half and all of ``min(cap, base * 2 ** (attempt - 1))``."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 60))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


class Backoff:
    """The delays of one retry loop: ``next()`` after each failure, ``reset()``
    after a success. ``name`` says whose loop it is in logs."""

    def __init__(
        self, name: str, base: float, cap: float, *, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff {name!r}: need 0 < base <= cap, got {base}, {cap}")
        self.name = name
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng

    def next(self) -> float:
        """Count one more failure; the seconds to wait before the next try."""
        self.failures += 1
        return retry_delay(self.failures, self.base, self.cap, self._rng)

    def reset(self) -> None:
        """A try succeeded: the next failure waits the base delay again."""
        self.failures = 0

    async def wait(self) -> float:
        """Count a failure and sleep its delay; returns the delay."""
        delay = self.next()
        await asyncio.sleep(delay)
        return delay
