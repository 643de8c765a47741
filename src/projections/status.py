"""An order's projected state as operators and the shop read it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events.chain import format_time
from events.connector import Database
from events.store import read_stream
from projections.projectors import QUERIES


async def order_status(db: Database, order_id: str) -> dict[str, Any] | None:
    """The order, its verification, its countdown and its actions; None when the
    ledger knows nothing of it."""
    async with db.transaction() as session:
        order = await session.fetch_one(QUERIES["order_row"], (order_id,))
        verification = await session.fetch_one(QUERIES["verification_row"], (order_id,))
        countdown = await session.fetch_one(QUERIES["countdown_row"], (order_id,))
    events = await read_stream(db, f"order-{order_id}")
    if not events and order is None and verification is None and countdown is None:
        return None
    now = datetime.now(UTC)
    return {
        "order_id": order_id,
        "order": _order(order),
        "verification": _verification(verification),
        "countdown": _countdown(countdown, now),
        "actions": [
            {
                "type": e.type,
                "action": e.payload.get("action"),
                "idempotency_key": e.payload.get("idempotency_key"),
                "attempt": e.payload.get("attempt"),
                "error": e.payload.get("error"),
                "recorded_at": format_time(e.recorded_at),
                "position": e.position,
            }
            for e in events
            if e.type.startswith("action.") and isinstance(e.payload, dict)
        ],
        "events": len(events),
    }


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _order(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    _, created_at, total, currency, customer, status, updated_at = row
    return {
        "created_at": _time(created_at),
        "total": str(total) if total is not None else None,
        "currency": currency,
        "customer": customer,
        "status": status,
        "updated_at": _time(updated_at),
    }


def _verification(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    _, sessions, latest, decided_at, submitted_at, attempts, updated_at = row
    return {
        "sessions": list(sessions),
        "latest_decision": latest,
        "decided_at": _time(decided_at),
        "submitted_at": _time(submitted_at),
        "attempts": attempts,
        "updated_at": _time(updated_at),
    }


def _countdown(row: Any, now: datetime) -> dict[str, Any] | None:
    if row is None:
        return None
    _, started_at, due_at, expires_at, reminders, reminded, state, closed_at, updated_at = row
    running = state == "running"
    return {
        "state": state,
        "started_at": _time(started_at),
        "due_at": _time(due_at),
        "expires_at": _time(expires_at),
        "seconds_left": max((expires_at - now).total_seconds(), 0.0) if running else None,
        "reminders": [_time(r) for r in reminders],
        "reminded": [_time(r) for r in reminded],
        "closed_at": _time(closed_at),
        "updated_at": _time(updated_at),
    }
