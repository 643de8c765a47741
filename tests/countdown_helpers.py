"""Reading an order's countdown outcome straight from the ledger and projections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from tests.e2e_helpers import order_body

WINDOW_ENV = {
    "HOOKLEDGER_COUNTDOWN_WINDOW": "3s",
    "HOOKLEDGER_COUNTDOWN_REMINDERS": "1s",
    "HOOKLEDGER_BACKGROUND": "true",
}


def now_order(order_id: str, **extra: Any) -> dict[str, Any]:
    """An order created now (the countdown starts at the order's own time)."""
    return order_body(order_id, createdAt=datetime.now().astimezone().isoformat(), **extra)


def types_of(database_url: str, order_id: str) -> list[str]:
    """The types of an order's events, in stream order."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT type FROM events WHERE stream = %s ORDER BY stream_version",
            (f"order-{order_id}",),
        ).fetchall()
    return [r[0] for r in rows]


def expiry_lateness(database_url: str, order_id: str) -> float | None:
    """Seconds from the countdown's expiry time to the recorded expiry."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM recorded_at - (payload->>'expires_at')::timestamptz) "
            "FROM events WHERE provider = 'hookledger' AND event_id = %s "
            "AND type = 'countdown.expired'",
            (f"countdown.closed:{order_id}",),
        ).fetchone()
    return float(row[0]) if row else None


def countdown_state(database_url: str, order_id: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state FROM countdowns WHERE order_id = %s", (order_id,)
        ).fetchone()
    return str(row[0]) if row else None
