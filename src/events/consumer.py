"""Run a consumer of the ledger: one active runner per name across all processes,
each batch applied together with its checkpoint, so a crash neither skips nor
repeats an event, and an event the consumer cannot apply is set aside
(``events.quarantine``) instead of stopping it."""

from __future__ import annotations

import logging
from typing import Protocol

from events.checkpoints import advance_checkpoint, lock_checkpoint, read_checkpoint
from events.connector import Database, Session
from events.leases import Lease, run_while_leased
from events.model import RecordedEvent
from events.quarantine import error_text, set_aside, sets_aside
from events.store import read_after
from events.subscription import Reader, Subscription

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
        read: Reader = read_after,
        woken: bool = True,
    ) -> None:
        self._db = db
        self._read = read
        self._woken = woken
        self.consumer = consumer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_interval = retry_interval
        self.active = False
        self.position = 0

    async def run(self) -> None:
        """Run until cancelled."""
        await run_while_leased(
            self._db,
            self.consumer.name,
            self._follow,
            retry_interval=self._retry_interval,
            context=lambda: {"consumer": self.consumer.name, "position": self.position},
        )

    async def _follow(self, lease: Lease) -> None:
        name = self.consumer.name
        self.position = await read_checkpoint(self._db, name)
        log.info("consumer active", extra={"consumer": name, "position": self.position})
        subscription = Subscription(
            self._db,
            after=self.position,
            batch_size=self._batch_size,
            poll_interval=self._poll_interval,
            read=self._read,
            woken=self._woken,
        )
        self.active = True
        try:
            async for batch in subscription.batches():
                if not lease.held:
                    log.warning("lease lost", extra={"consumer": name})
                    return
                try:
                    await self._apply(batch)
                except Exception as exc:
                    if not sets_aside(exc):
                        raise
                    log.warning(
                        "batch failed; applying its events one by one",
                        extra={"consumer": name, "position": self.position,
                               "batch": len(batch), "error": error_text(exc)},
                    )  # fmt: skip
                    await self._apply_one_by_one(batch)
                self.position = batch[-1].position
        finally:
            self.active = False

    async def _apply(self, batch: list[RecordedEvent]) -> None:
        name = self.consumer.name
        async with self._db.transaction() as session:
            await lock_checkpoint(session, name, expected=self.position)
            await self.consumer.apply(session, batch)
            await advance_checkpoint(session, name, batch[-1].position)

    async def _apply_one_by_one(self, batch: list[RecordedEvent]) -> None:
        """Apply each event alone (undone alone if it fails); set aside the ones
        that fail, in the transaction that moves the checkpoint past them."""
        name = self.consumer.name
        async with self._db.transaction() as session:
            await lock_checkpoint(session, name, expected=self.position)
            for event in batch:
                try:
                    async with session.savepoint():
                        await self.consumer.apply(session, [event])
                except Exception as exc:
                    if not sets_aside(exc):
                        raise
                    await set_aside(session, name, event.position, event.event_id,
                                    error_text(exc))  # fmt: skip
            await advance_checkpoint(session, name, batch[-1].position)
