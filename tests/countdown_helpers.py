"""Reading an order's countdown outcome straight from the ledger and projections,
and waiting for the moments the countdown tests need (never a fixed sleep)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.e2e_helpers import order_body, send_post_purchase, wait_for

# A window of a fraction of a second, its reminder halfway: an order's countdown
# starts, (reminds) and expires while the test polls for it.
WINDOW_ENV = {
    "HOOKLEDGER_COUNTDOWN_WINDOW": "600ms",
    "HOOKLEDGER_COUNTDOWN_REMINDERS": "300ms",
    "HOOKLEDGER_BACKGROUND": "true",
}
# An order whose test needs something to happen before its window closes (an
# approval, a reminder) is dated this far ahead, so that the window outlasts a
# round trip on a busy machine; waiting for a satisfaction costs nothing by it.
HEADSTART = 2.0


def now_order(order_id: str, ahead: float = 0.0, **extra: Any) -> dict[str, Any]:
    """An order created now, or ``ahead`` seconds from now (the countdown starts
    at the order's own time)."""
    created = datetime.now().astimezone() + timedelta(seconds=ahead)
    return order_body(order_id, createdAt=created.isoformat(), **extra)


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


def consumed(database_url: str, position: int) -> bool:
    """Every consumer of the ledger (projections, policy) is past ``position``."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT min(position), count(*) FROM checkpoints").fetchone()
    return row is not None and row[1] >= 4 and row[0] >= position


def all_due(database_url: str, orders: Sequence[str]) -> bool:
    """Every one of these orders' countdowns has started and fallen due, by the
    database's clock (the one the timers go by)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(bool_and((payload->>'due_at')::timestamptz < now()), "
            "false) FROM events WHERE type = 'countdown.started' AND stream = ANY(%s)",
            ([f"order-{o}" for o in orders],),
        ).fetchone()
    return row is not None and row[0] == len(orders) and bool(row[1])


def timers_left(database_url: str, orders: Sequence[str]) -> int:
    """These orders' timers not fired yet: once none is left, nothing more can happen."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM countdown_timers WHERE order_id = ANY(%s)", (list(orders),)
        ).fetchone()
    return int(row[0]) if row else -1


def witness_expiry(
    server_url: str, database_url: str, ahead: float = 0.0, timeout: float = 15
) -> str:
    """Order something now (dated ``ahead``, as the orders it stands witness for)
    and wait for its expiry: then every order made before it is past its due time
    and the timer worker has gone by it (it fires timers oldest first), so an
    expiry that has not happened to them never will."""
    witness = f"witness-{uuid.uuid4().hex[:8]}"
    assert send_post_purchase(server_url, now_order(witness, ahead)).status_code == 200
    assert wait_for(lambda: expiry_lateness(database_url, witness) is not None, timeout)
    return witness
