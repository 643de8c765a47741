"""A small day of business for the analysts' views, and what the views must say
about it, whichever engine runs them (BigQuery, DuckDB)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from events.model import NewEvent
from tests.exporter.ledger import lifecycle_event

VIEWS = ("verification_funnel_daily", "order_verification_times", "webhook_volume_daily")
JAN5 = date(2026, 1, 5)
JAN6 = date(2026, 1, 6)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def scenario_events() -> list[NewEvent]:
    """Orders a (verified in time), b (expired), c (still open), d (cancelled), and
    a Veriff session that belongs to no order."""

    def order(order_id: str, when: datetime) -> list[NewEvent]:
        return [
            lifecycle_event("post-purchase", "order.created", order_id, occurred_at=when),
            lifecycle_event("hookledger", "countdown.started", order_id),
        ]

    return [
        *order("a", at(JAN5, 23, 30)),
        *order("b", at(JAN5, 10)),
        lifecycle_event("veriff", "verification.submitted", "a", occurred_at=at(JAN6, 0, 10)),
        lifecycle_event("veriff", "verification.approved", "a", occurred_at=at(JAN6, 1, 30)),
        lifecycle_event("hookledger", "countdown.satisfied", "a"),
        lifecycle_event("hookledger", "countdown.expired", "b"),
        *order("c", at(JAN6, 9)),
        *order("d", at(JAN6, 12)),
        lifecycle_event("veriff", "verification.declined", "d", occurred_at=at(JAN6, 12, 30)),
        lifecycle_event("hookledger", "countdown.cancelled", "d"),
        lifecycle_event("veriff", "verification.started", None),
    ]


FUNNEL = [
    {"order_date": JAN5, "orders": 2, "windows_started": 2, "verifications_begun": 1,
     "approved": 1, "verified_within_window": 1, "expired": 1, "cancelled": 0,
     "still_open": 0, "verified_share": 0.5},
    {"order_date": JAN6, "orders": 2, "windows_started": 2, "verifications_begun": 1,
     "approved": 0, "verified_within_window": 0, "expired": 0, "cancelled": 1,
     "still_open": 1, "verified_share": 0.0},
]  # fmt: skip

TIMES = [
    {"order_id": "a", "ordered_at": at(JAN5, 23, 30), "verification_begun_at": at(JAN6, 0, 10),
     "approved_at": at(JAN6, 1, 30), "seconds_to_approval": 7200.0, "outcome": "verified"},
    {"order_id": "b", "ordered_at": at(JAN5, 10), "verification_begun_at": None,
     "approved_at": None, "seconds_to_approval": None, "outcome": "expired"},
    {"order_id": "c", "ordered_at": at(JAN6, 9), "verification_begun_at": None,
     "approved_at": None, "seconds_to_approval": None, "outcome": "open"},
    {"order_id": "d", "ordered_at": at(JAN6, 12), "verification_begun_at": at(JAN6, 12, 30),
     "approved_at": None, "seconds_to_approval": None, "outcome": "cancelled"},
]  # fmt: skip

VOLUME = {
    ("post-purchase", "order", "created"): 4,
    ("hookledger", "countdown", "started"): 4,
    ("hookledger", "countdown", "satisfied"): 1,
    ("hookledger", "countdown", "expired"): 1,
    ("hookledger", "countdown", "cancelled"): 1,
    ("veriff", "verification", "submitted"): 1,
    ("veriff", "verification", "approved"): 1,
    ("veriff", "verification", "declined"): 1,
    ("veriff", "verification", "started"): 1,
}


def check_views(views: dict[str, list[dict[str, Any]]]) -> None:
    """Assert what every engine's views must say about the scenario."""
    funnel = sorted(views["verification_funnel_daily"], key=lambda r: r["order_date"])
    assert [{k: _plain(r[k]) for k in FUNNEL[0]} for r in funnel] == FUNNEL

    times = sorted(views["order_verification_times"], key=lambda r: r["order_id"])
    assert [{k: _plain(r[k]) for k in TIMES[0]} for r in times] == TIMES
    assert all(r["window_started_at"] is not None for r in times)
    closed = {r["order_id"]: r["window_closed_at"] is not None for r in times}
    assert closed == {"a": True, "b": True, "c": False, "d": True}

    volume = views["webhook_volume_daily"]
    assert {(r["provider"], r["type_family"], r["outcome"]): r["events"] for r in volume} == VOLUME
    assert len({r["event_date"] for r in volume}) == 1


def _plain(value: Any) -> Any:
    """Engines differ in the tz object and integer width they return."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if isinstance(value, float) else int(value)
    return value
