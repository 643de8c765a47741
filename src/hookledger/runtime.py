"""What a long-running process runs beside its own work (``serve``'s HTTP routes,
``worker``'s wait for a signal): the database, its migrations, the appender,
the background work and the secrets' refresh, started in that order and
stopped in the reverse one, whatever fails on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from events.appender import Appender
from events.connector import Database
from hookledger.background import Background
from hookledger.checkpointer import Checkpointer
from hookledger.migrations import migrate
from hookledger.secrets import SecretStore
from scheduler.actions.config import ActionSettings


class Runtime:
    """One process's shared parts, built but not started (see ``running``)."""

    def __init__(
        self,
        db: Database,
        appender: Appender,
        secrets: SecretStore,
        actions: ActionSettings,
        background: Background | None,
        checkpointer: Checkpointer,
    ) -> None:
        self.db = db
        self.appender = appender
        self.secrets = secrets
        self.actions = actions
        self.background = background
        self.checkpointer = checkpointer
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def close_on_stop(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call ``close`` on the way down, before the background work stops (a
        client of the process's own, such as a Cloud Tasks queue)."""
        self._closers.append(close)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Everything started for the body of the ``async with``, then stopped."""
        await self.db.open()
        try:
            await migrate(self.db)
            await self.appender.start()
            try:
                if self.background is not None:
                    await self.background.start()
                refresh = asyncio.create_task(self.secrets.run(), name="secrets")
                try:
                    yield self
                finally:
                    refresh.cancel()
                    for close in self._closers:
                        await close()
                    if self.background is not None:
                        await self.background.stop()
            finally:
                await self.appender.stop()
        finally:
            await self.db.close()
