"""Events a consumer could not apply, set aside so that the others go on.

The event stays in the ledger; a row of ``quarantine`` says which consumer
passed over which position and why, written in the transaction that moves the
consumer's checkpoint past it. ``retry`` applies such events again (after a
fix) and removes the rows of those that now apply.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from events.connector import Database, Session
from events.errors import DataRefused, HookledgerError
from events.model import RecordedEvent
from events.queries import QUERIES
from events.store import to_event

log = logging.getLogger(__name__)

# The stored error's length: enough for a type, a message's first line and where.
MAX_ERROR = 300


class Applies(Protocol):
    """A consumer, as far as a retry needs it (``events.consumer.Consumer``)."""

    @property
    def name(self) -> str: ...

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None: ...


class Quarantined(msgspec.Struct, frozen=True):
    """One event set aside by one consumer."""

    consumer: str
    position: int
    provider: str
    type: str
    stream: str
    event_id: str
    error: str
    first_seen_at: datetime
    last_seen_at: datetime
    attempts: int


class RetryOutcome(msgspec.Struct, frozen=True):
    consumer: str
    position: int
    applied: bool
    error: str | None = None


def sets_aside(exc: Exception) -> bool:
    """Whether applying an event failed because of the event itself: any error
    that is not one of hookledger's own (a fold meeting what it never expected),
    or the database refusing the values it led to. Anything else (a lost
    database, a moved checkpoint) is retried instead, never set aside."""
    return isinstance(exc, DataRefused) or not isinstance(exc, HookledgerError)


def error_text(exc: BaseException) -> str:
    """What the quarantine keeps of an error: its type, the first line of its
    message and where it was raised; bounded, and no body (the event's bytes
    stay in the ledger only)."""
    first_line = str(exc).strip().split("\n", 1)[0]
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name})"
        text = text[: MAX_ERROR - len(where)] + where
    return text[:MAX_ERROR]


async def set_aside(
    session: Session, consumer: str, position: int, event_id: str, error: str
) -> None:
    """Record (inside the caller's transaction) that ``consumer`` passed over the
    event at ``position``; logged at its first failure only."""
    row = await session.fetch_one(
        QUERIES["quarantine_event"], (consumer, position, error[:MAX_ERROR])
    )
    if row is not None and row[0] == 1:
        log.error(
            "event quarantined",
            extra={"consumer": consumer, "position": position, "event_id": event_id,
                   "error": error[:MAX_ERROR]},
        )  # fmt: skip


async def release(session: Session, consumers: Sequence[str], up_to: int) -> None:
    """Forget what ``consumers`` set aside up to ``up_to`` (a rebuild applied it
    all again)."""
    await session.execute(QUERIES["release_quarantine_up_to"], (list(consumers), up_to))


async def quarantined(db: Database, consumer: str | None = None) -> list[Quarantined]:
    """Every event set aside (by ``consumer`` only, when given), in position order."""
    rows = await db.fetch_all(QUERIES["list_quarantine"], (consumer, consumer))
    return [Quarantined(*row) for row in rows]


async def quarantine_counts(db: Database) -> dict[str, int]:
    """How many events each consumer has set aside; every consumer with a
    checkpoint is listed, at zero when it has set none aside."""
    return {name: count for name, count in await db.fetch_all(QUERIES["quarantine_counts"])}


async def retry(
    db: Database,
    consumers: Mapping[str, Applies],
    *,
    consumer: str | None = None,
    positions: Sequence[int] = (),
) -> list[RetryOutcome]:
    """Apply set-aside events again, each in a transaction of its own: one that
    applies leaves the quarantine, one that fails again stays (its attempts
    counted, its error updated). ``consumer`` and ``positions`` narrow the choice."""
    chosen = [
        q
        for q in await quarantined(db, consumer)
        if (not positions or q.position in positions) and q.consumer in consumers
    ]
    outcomes: list[RetryOutcome] = []
    for item in chosen:
        outcomes.append(await _retry_one(db, consumers[item.consumer], item.position))
    return outcomes


async def _retry_one(db: Database, consumer: Applies, position: int) -> RetryOutcome:
    async with db.transaction() as session:
        row = await session.fetch_one(QUERIES["read_position"], (position,))
        if row is None:  # cannot happen in an append-only ledger; say so all the same
            return RetryOutcome(consumer.name, position, False, "no event at this position")
        event = to_event(row)
        try:
            async with session.savepoint():
                # Out of the quarantine first: a consumer reads its streams without
                # the events it set aside. A failure undoes this with the rest.
                await session.execute(QUERIES["release_quarantined"], (consumer.name, position))
                await consumer.apply(session, [event])
        except Exception as exc:
            if not sets_aside(exc):
                raise
            error = error_text(exc)
            await set_aside(session, consumer.name, position, event.event_id, error)
            return RetryOutcome(consumer.name, position, False, error)
    log.info("quarantined event applied", extra={"consumer": consumer.name, "position": position})
    return RetryOutcome(consumer.name, position, True)
