"""Waiting for a NOTIFY on a channel, with a timeout as the guarantee.

A notification is only a hint that something changed: callers always look for
themselves after waking, so a lost notification, or a lost listening
connection, only delays them until the timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import LiteralString

from events.connector import Connection, Database
from events.errors import HookledgerError, Unavailable

log = logging.getLogger(__name__)


class Wakeup:
    """A listening connection on one channel, reopened when it is lost."""

    def __init__(self, db: Database, channel: LiteralString) -> None:
        self._db = db
        self._channel = channel
        self._listener: Connection | None = None

    async def listen(self) -> None:
        """Start listening (again) if not listening now; failures are logged and
        leave the caller polling."""
        if self._listener is not None and not self._listener.broken:
            return
        try:
            listener = await self._db.connect(autocommit=True)
        except Unavailable as exc:
            log.warning("cannot listen", extra={"channel": self._channel, "error": exc.detail})
            return
        try:
            await listener.listen(self._channel)
        except HookledgerError as exc:
            await listener.close()
            log.warning("cannot listen", extra={"channel": self._channel, "error": exc.detail})
            return
        self._listener = listener

    async def wait(self, timeout: float) -> None:
        """Until a notification comes or ``timeout`` seconds pass."""
        if timeout <= 0:
            return
        if self._listener is None:
            await asyncio.sleep(timeout)
            return
        try:
            await self._listener.wait_notify(timeout)
        except Unavailable as exc:
            log.warning(
                "lost the listening connection",
                extra={"channel": self._channel, "error": exc.detail},
            )
            await self.close()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
