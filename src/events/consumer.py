"""Run a consumer of the ledger: one active runner per name across all processes,
each batch applied together with its checkpoint, so a crash neither skips nor
repeats an event."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from events.checkpoints import advance_checkpoint, lock_checkpoint, read_checkpoint
from events.connector import Database, Session
from events.errors import CheckpointMoved, HookledgerError, Unavailable
from events.leases import Lease, try_lease
from events.model import RecordedEvent
from events.subscription import Subscription

log = logging.getLogger(__name__)


class Consumer(Protocol):
    """Something that folds ledger events into its own state."""

    @property
    def name(self) -> str: ...

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None:
        """Apply a batch inside ``session``'s transaction (which also advances the
        checkpoint). Effects outside the database must be idempotent: after a
        crash the batch is applied again."""
        ...


class ConsumerRunner:
    """Keeps trying to hold ``consumer``'s lease; while it does, follows the ledger
    from the consumer's checkpoint and applies every batch exactly once."""

    def __init__(
        self,
        db: Database,
        consumer: Consumer,
        *,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._db = db
        self.consumer = consumer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_interval = retry_interval
        self.active = False
        self.position = 0

    async def run(self) -> None:
        """Run until cancelled."""
        name = self.consumer.name
        while True:
            try:
                lease = await try_lease(self._db, name)
            except Unavailable as exc:
                log.warning("cannot ask for a lease", extra={"consumer": name, "error": exc.detail})
                lease = None
            if lease is None:
                await asyncio.sleep(self._retry_interval)
                continue
            try:
                await self._follow(lease)
            except (Unavailable, CheckpointMoved) as exc:
                log.warning("consumer restarts", extra={"consumer": name, "error": exc.detail})
            except HookledgerError as exc:
                # A batch the database refuses will be refused again: say which, and
                # retry slowly rather than skip an event.
                log.error(
                    "consumer failed on a batch",
                    extra={"consumer": name, "position": self.position, "error": exc.detail},
                )
            finally:
                self.active = False
                await lease.release()
            await asyncio.sleep(self._retry_interval)

    async def _follow(self, lease: Lease) -> None:
        name = self.consumer.name
        self.position = await read_checkpoint(self._db, name)
        self.active = True
        log.info("consumer active", extra={"consumer": name, "position": self.position})
        subscription = Subscription(
            self._db,
            after=self.position,
            batch_size=self._batch_size,
            poll_interval=self._poll_interval,
        )
        async for batch in subscription.batches():
            if not lease.held:
                log.warning("lease lost", extra={"consumer": name})
                return
            async with self._db.transaction() as session:
                await lock_checkpoint(session, name, expected=self.position)
                await self.consumer.apply(session, batch)
                await advance_checkpoint(session, name, batch[-1].position)
            self.position = batch[-1].position
