"""Erasing one person's personal values on request (GDPR article 17).

An erasure deletes the subject's rows of ``personal_values`` (the only copy of
its values and of their salts), the orders projection's and the actions' copies
of the address, and records one ``subject.erased`` event in the subject's
stream saying what classes of data went, when, why and by whom (never a
value). It holds the append lock from its first read to its commit: every
event positioned before its ``subject.erased`` has nothing personal left, and
an event appended after it is kept like any other (a second request erases it).
Erasing again with nothing left to erase records nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from events.appender import write
from events.connector import Database, Session
from events.model import ORDER_STREAM_PREFIX, NewEvent
from events.queries import QUERIES as LEDGER
from personal.lookup import lookup_hash, lookup_key
from personal.queries import QUERIES

log = logging.getLogger(__name__)

ERASED = "subject.erased"
PROVIDER = "hookledger"
MAX_REASON_CHARS = 500


class Erased(msgspec.Struct, frozen=True):
    """What one subject's erasure did."""

    subject: str
    values: int
    events: int
    classes: list[str]
    event_id: str | None
    """The ``subject.erased`` event recorded, or None when nothing was left."""
    cancelled_emails: int = 0


def erasure_id(kind: str, subject: str, rows: Sequence[Any]) -> str:
    """A deterministic event id for erasing exactly these values of ``subject``."""
    taken = sorted((int(r[0]), int(r[1])) for r in rows)
    digest = hashlib.sha256(json.dumps(taken).encode()).hexdigest()[:32]
    return f"{kind}:{subject}:{digest}"


def data_class(path: Sequence[str]) -> str:
    """The class of data a value's path names: its last key that is not an index."""
    for key in reversed(path):
        if not key.isdigit():
            return key
    return "value"


async def subjects_for_email(db: Database, address: str, key: bytes | None = None) -> list[str]:
    """The order streams that hold this e-mail address (by its keyed hash;
    ``key``: the installation's lookup key, when the caller holds it)."""
    key = key or await lookup_key(db)
    rows = await db.fetch_all(QUERIES["subjects_by_lookup"], (lookup_hash(key, address),))
    return [r[0] for r in rows]


async def erase(
    db: Database,
    subjects: Sequence[str],
    *,
    reason: str,
    by: str,
    via: str,
    addresses: Sequence[str] = (),
) -> list[Erased]:
    """Erase each subject's personal values (and ``addresses`` wherever they
    appear), in one transaction; one ``subject.erased`` event per subject that
    had something left. Then, in a second one, the copies of the address that
    the projections and the actions hold (every time: a retry after a crash in
    between completes it)."""
    key = await lookup_key(db) if addresses else b""
    extra = [lookup_hash(key, a) for a in addresses]
    async with db.transaction() as session:
        # Taken first: no append can slip in between what is read and deleted.
        await session.execute(LEDGER["take_append_lock"])
        rows = await session.fetch_all(
            QUERIES["held_for_erasure"], (list(subjects), list(subjects), extra)
        )
        done = [_erased(subject, rows, subjects) for subject in subjects]
        events = [_event(e, reason, by, via) for e in done if e.event_id is not None]
        if events:
            await write(session, events)
            await session.execute(QUERIES["count_erased"], (len(events), len(rows), "request"))
        if rows:
            await session.execute(
                QUERIES["delete_values"], ([r[0] for r in rows], [r[1] for r in rows])
            )
    for item in done:
        if item.event_id is not None:
            log.info("personal data erased on request",
                     extra={"subject": item.subject, "values": item.values,
                            "classes": item.classes, "via": via})  # fmt: skip
    # Not under the append lock: an action being sent holds its row while its
    # outcome waits for that lock, so waiting here for the row would never end.
    # Every subject a value was taken from: the same address in the person's
    # other orders goes from their copies too.
    touched = list(dict.fromkeys([*subjects, *(str(r[2]) for r in rows)]))
    cancelled = await forget_addresses(db, touched)
    # Credited as the values are: those of subjects not asked for, to the first.
    elsewhere = sum(n for subject, n in cancelled.items() if subject not in subjects)
    return [msgspec.structs.replace(e, cancelled_emails=cancelled.get(e.subject, 0)
                                    + (elsewhere if e.subject == subjects[0] else 0))
            for e in done]  # fmt: skip


async def forget_addresses(db: Database, subjects: Sequence[str]) -> dict[str, int]:
    """The orders projection's and the actions' copies of these order subjects'
    addresses gone, their e-mails not yet sent cancelled (how many, by subject)."""
    orders = [s.removeprefix(ORDER_STREAM_PREFIX) for s in subjects
              if s.startswith(ORDER_STREAM_PREFIX)]  # fmt: skip
    cancelled: dict[str, int] = {}
    if not orders:
        return cancelled
    async with db.transaction() as session:
        await session.execute(QUERIES["forget_customers"], (orders,))
        for (order,) in await session.fetch_all(QUERIES["cancel_emails"], (orders,)):
            subject = ORDER_STREAM_PREFIX + order
            cancelled[subject] = cancelled.get(subject, 0) + 1
        await session.execute(QUERIES["forget_action_addresses"], (orders,))
    return cancelled


def _erased(subject: str, rows: Sequence[Any], subjects: Sequence[str]) -> Erased:
    """What erasing ``subject`` takes of ``rows``: its own, and those elsewhere
    that are no other requested subject's (credited to the first subject)."""
    mine = [r for r in rows if r[2] == subject]
    if subject == subjects[0]:
        mine += [r for r in rows if r[2] not in subjects]
    if not mine:
        return Erased(subject, 0, 0, [], None)
    return Erased(
        subject=subject,
        values=len(mine),
        events=len({r[0] for r in mine}),
        classes=sorted({data_class(r[3]) for r in mine}),
        event_id=erasure_id("erasure", subject, mine),
    )


def _event(done: Erased, reason: str, by: str, via: str) -> NewEvent:
    body = {
        "subject": done.subject,
        "classes": done.classes,
        "values": done.values,
        "events": done.events,
        "reason": reason[:MAX_REASON_CHARS],
        "by": by[:200],
        "via": via,
        "erased_at": datetime.now(UTC).isoformat(),
    }
    raw = msgspec.json.encode(body)
    assert done.event_id is not None
    return NewEvent(
        provider=PROVIDER,
        event_id=done.event_id,
        stream=done.subject,
        type=ERASED,
        payload_json=raw,
        raw=raw,
        metadata={"by": by[:200], "via": via},
    )


async def last_erasure(session: Session | Database, subject: str) -> dict[str, Any] | None:
    """The subject's latest ``subject.erased`` event's body, if any."""
    row = await session.fetch_one(QUERIES["last_erasure"], (subject,))
    return None if row is None else {"position": row[0], "event_id": row[1], **row[3]}
