"""Follow the ledger: every committed event exactly once, in position order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from events.connector import Database
from events.errors import DatabaseUnavailable
from events.model import RecordedEvent
from events.retry import DATABASE_RETRY_CAP, Backoff
from events.store import read_after
from events.wakeup import Wakeup

log = logging.getLogger(__name__)

CHANNEL = "hookledger_events"

Reader = Callable[[Database, int, int], Awaitable[list[Any]]]
"""Reads up to ``limit`` events after ``position`` (``read_after``, or a lighter
read of fewer columns for a consumer that needs less), each with a ``position``."""


class Subscription:
    """Batches of events after a cursor, woken by NOTIFY.

    NOTIFY is only a hint: a read also happens every ``poll_interval`` seconds,
    so a lost notification (or a lost listening connection) delays, never skips.
    """

    def __init__(
        self,
        db: Database,
        *,
        after: int = 0,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        read: Reader = read_after,
        woken: bool = True,
    ) -> None:
        self._db = db
        self._read = read
        # Without ``woken`` it only polls: for a consumer that gains from large
        # batches more than from a short lag (the Merkle tree), one read a poll.
        self._woken = woken
        self.position = after
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = Wakeup(db, CHANNEL)

    async def batches(self) -> AsyncGenerator[list[RecordedEvent]]:
        """Yield non-empty batches forever; the cursor advances as each is taken."""
        backoff = Backoff(
            "subscription", self._poll_interval, max(self._poll_interval, DATABASE_RETRY_CAP)
        )
        ahead: asyncio.Task[list[Any]] | None = None
        try:
            while True:
                if self._woken:
                    await self._wakeup.listen()
                try:
                    if ahead is not None:
                        events, ahead = await ahead, None
                    else:
                        events = await self._read(self._db, self.position, self._batch_size)
                except DatabaseUnavailable as exc:
                    # A read is idempotent: wait and read again from the same cursor.
                    log.warning("cannot read new events", extra={"error": exc.detail})
                    await backoff.wait()
                    continue
                backoff.reset()
                if events:
                    self.position = events[-1].position
                    if len(events) == self._batch_size:
                        # A full batch: more is likely waiting. Read it while this
                        # one is applied (catching up is then as fast as the slower).
                        ahead = asyncio.ensure_future(
                            self._read(self._db, self.position, self._batch_size)
                        )
                    yield events
                    continue
                if self._woken:
                    await self._wakeup.wait(self._poll_interval)
                else:
                    await asyncio.sleep(self._poll_interval)
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
            await self._wakeup.close()
