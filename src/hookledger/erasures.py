"""Erasure on request and the retention sweep, as the CLI and the API run them:
which subjects a request names, and what is answered."""

from __future__ import annotations

from typing import Any

from api.rejections import NotFound
from events.connector import Database
from events.model import ORDER_STREAM_PREFIX
from events.queries import QUERIES as LEDGER
from personal.erasure import erase, last_erasure, subjects_for_email
from personal.lookup import normalised
from personal.queries import QUERIES


async def erasure_preview(db: Database, order_id: str) -> dict[str, int]:
    """What erasing an order's customer would delete: ``values`` in all, held
    for this order or wherever its customer's address appears (``others``:
    in how many other subjects, such as the same person's other orders)."""
    subjects = [ORDER_STREAM_PREFIX + order_id]
    row = await db.fetch_one(QUERIES["erasure_preview"], (subjects, subjects, subjects))
    values, others = row if row else (0, 0)
    return {"values": int(values), "others": int(others)}


async def erase_request(
    db: Database, order_id: str | None, email: str | None, reason: str, by: str, via: str
) -> dict[str, Any]:
    """Erase the subject an order id or an e-mail address names; what was done."""
    if order_id is not None:
        subjects = [ORDER_STREAM_PREFIX + order_id]
        exists = await db.fetch_one(LEDGER["stream_head"], (subjects[0],))
        if exists is None:
            raise NotFound(f"no order {order_id!r}")
        addresses: list[str] = []
    else:
        assert email is not None
        subjects = await subjects_for_email(db, email)
        addresses = [normalised(email)]
        if not subjects:
            # Nothing names it (never seen, or erased already): nothing to do,
            # and no event that would itself say the address was once here.
            return {"subjects": [], "erased": False}
    done = await erase(db, subjects, reason=reason, by=by, via=via, addresses=addresses)
    whole = {
        str(r[0]): int(r[1]) for r in await db.fetch_all(QUERIES["recorded_whole"], (subjects,))
    }
    answer = []
    for item in done:
        entry: dict[str, Any] = {
            "subject": item.subject, "values": item.values, "events": item.events,
            "classes": item.classes, "event_id": item.event_id,
            "cancelled_emails": item.cancelled_emails,
        }  # fmt: skip
        if item.event_id is None:
            entry["erased_before"] = await last_erasure(db, item.subject)
        if whole.get(item.subject):
            # Recorded before this version held personal values apart: the
            # append-only ledger keeps them whole (README, "Personal data").
            entry["recorded_whole"] = whole[item.subject]
        answer.append(entry)
    return {"subjects": answer, "erased": any(d.event_id for d in done)}
