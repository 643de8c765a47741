"""The retention sweep: erases the personal values whose retention ran out, in
batches, oldest first, and records one ``subject.expired`` event per subject
(classes of data, how many values; never a value). Values kept "from the
countdown's close" get their due time when their order's countdown closes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from events.appender import write
from events.connector import Database
from events.errors import HookledgerError
from events.model import ORDER_STREAM_PREFIX, NewEvent
from events.queries import QUERIES as LEDGER
from personal.erasure import PROVIDER, data_class, erasure_id, forget_addresses
from personal.queries import QUERIES

log = logging.getLogger(__name__)

EXPIRED = "subject.expired"
BATCH = 1_000


class Swept(msgspec.Struct, frozen=True):
    """One sweep's outcome."""

    subjects: int
    values: int


class Due(msgspec.Struct, frozen=True):
    """A subject with values due (``retention --dry-run``)."""

    subject: str
    values: int
    classes: list[str]
    due_since: datetime


async def arm(db: Database) -> None:
    """Give the values counted from a countdown's close their due time, for
    every countdown closed."""
    async with db.transaction() as session:
        await session.execute(QUERIES["arm_countdown_values"])


async def peek(db: Database, limit: int = 100, now: datetime | None = None) -> list[Due]:
    """What the next sweeps would erase, oldest first (nothing is changed)."""
    rows = await db.fetch_all(QUERIES["peek_due"], (now or datetime.now(UTC), limit))
    return [Due(r[0], int(r[1]), sorted(r[2]), r[3]) for r in rows]


async def sweep_once(db: Database, *, limit: int = BATCH, now: datetime | None = None) -> Swept:
    """Erase the due values of up to ``limit`` subjects, in one transaction."""
    cutoff = now or datetime.now(UTC)
    async with db.transaction() as session:
        # The append lock first, as an erasure takes it: the two then never
        # wait for each other's rows in opposite orders.
        await session.execute(LEDGER["take_append_lock"])
        subjects = [r[0] for r in await session.fetch_all(QUERIES["due_subjects"],
                                                          (cutoff, limit))]  # fmt: skip
        if not subjects:
            return Swept(0, 0)
        rows = await session.fetch_all(QUERIES["take_due"], (subjects, cutoff))
        by_subject: dict[str, list[Any]] = {}
        for row in rows:
            by_subject.setdefault(row[2], []).append(row)
        events = [_expired(subject, taken, cutoff) for subject, taken in by_subject.items()]
        if events:
            await write(session, events)
        await session.execute(QUERIES["count_erased"], (len(by_subject), len(rows), "retention"))
    # After the commit, as an erasure does (see personal.erasure.erase).
    addressed = [s for s, taken in by_subject.items()
                 if s.startswith(ORDER_STREAM_PREFIX) and any(r[4] for r in taken)]  # fmt: skip
    if addressed:
        kept = {r[0] for r in await db.fetch_all(QUERIES["addresses_left"], (addressed,))}
        await forget_addresses(db, [s for s in addressed if s not in kept])
    return Swept(len(by_subject), len(rows))


def _expired(subject: str, taken: Sequence[Any], cutoff: datetime) -> NewEvent:
    body = {
        "subject": subject,
        "classes": sorted({data_class(r[3]) for r in taken}),
        "values": len(taken),
        "events": len({r[0] for r in taken}),
        "reason": "retention",
        "due_by": cutoff.isoformat(),
    }
    raw = msgspec.json.encode(body)
    return NewEvent(
        provider=PROVIDER,
        event_id=erasure_id("expiry", subject, taken),
        stream=subject,
        type=EXPIRED,
        payload_json=raw,
        raw=raw,
        metadata={"via": "retention"},
    )


async def sweep(db: Database, *, limit: int = BATCH) -> Swept:
    """Arm what closed, then erase everything due, batch after batch."""
    await arm(db)
    subjects = values = 0
    while True:
        done = await sweep_once(db, limit=limit)
        subjects += done.subjects
        values += done.values
        if done.subjects < limit:
            return Swept(subjects, values)


async def run(db: Database, interval: float) -> None:
    """The background job: a sweep every ``interval`` seconds, for ever."""
    while True:
        try:
            done = await sweep(db)
        except HookledgerError as exc:
            log.warning("retention sweep failed; trying again", extra={"error": exc.detail})
        else:
            if done.subjects:
                log.info("personal data erased under retention",
                         extra={"subjects": done.subjects, "values": done.values})  # fmt: skip
        await asyncio.sleep(interval)


async def retention_state(db: Database) -> tuple[int, int, int, float]:
    """Values held (estimate), due now, waiting for a countdown, and the lag."""
    row = await db.fetch_one(QUERIES["retention_state"])
    if row is None:
        return 0, 0, 0, 0.0
    return int(row[0]), int(row[1]), int(row[2]), float(row[3])


async def erasure_totals(db: Database) -> list[tuple[str, int, int]]:
    """Subjects and values erased so far, by cause (request, retention)."""
    rows = await db.fetch_all(QUERIES["erasure_totals"])
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
