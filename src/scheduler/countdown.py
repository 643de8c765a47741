"""The countdown policy's decisions, as pure functions of an order's folded state.

Each decision is an event of provider ``hookledger`` with a deterministic id, so
deciding twice records once. An order's countdown ends exactly once: satisfied,
expired and cancelled all use the id ``countdown.closed:<order>``, and the
ledger's unique key lets only the first of them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from events.model import ORDER_STREAM_PREFIX, NewEvent
from events.times import shifted
from projections.facts import HOOKLEDGER, EventLike, FoldEvent
from projections.fold import OrderState, fold


class CountdownConfig(msgspec.Struct, frozen=True):
    """The window an order has to pass verification, and when to remind."""

    window: timedelta = timedelta(hours=72)
    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    # How long a verification submitted by the due time may take to be decided.
    grace: timedelta = timedelta(hours=24)


class TimerDecision(msgspec.Struct, frozen=True):
    """What a due timer leads to: events to record, and the expiry's new time if
    it was put off for a pending verification."""

    events: list[NewEvent]
    expires_at: datetime | None = None


def decision(
    order_id: str, event_id: str, kind: str, payload: dict[str, Any], at: datetime | None = None
) -> NewEvent:
    """A decision of hookledger's own about an order, as an event."""
    body = msgspec.json.encode(payload)
    return NewEvent(
        provider=HOOKLEDGER,
        event_id=event_id,
        stream=ORDER_STREAM_PREFIX + order_id,
        type=kind,
        payload_json=body,
        raw=body,
        occurred_at=at,
    )


def closing(state: OrderState, kind: str, payload: dict[str, Any]) -> NewEvent:
    """The one event that ends an order's countdown."""
    order = state.order_id
    return decision(order, f"countdown.closed:{order}", kind, {"order_id": order, **payload})


def on_events(
    order_id: str,
    events: Sequence[EventLike],
    config: CountdownConfig,
    now: datetime,
    folded: OrderState | None = None,
) -> tuple[OrderState, list[NewEvent]]:
    """Decisions the policy takes when an order's events change: start the
    countdown once the order exists, then satisfy or cancel it. Returns the
    order's state (with those decisions applied) and the decisions.
    ``folded``: the fold of ``events``, when already made."""
    state = folded if folded is not None else fold(order_id, events)
    decided: list[NewEvent] = []
    if state.countdown is None:
        if state.ordered_at is None:
            return state, []
        started = _start(state, state.ordered_at, config)
        decided.append(started)
        # Judge a verification that came before its order against this start.
        state = fold(order_id, [*events, as_fold_event(started, now)])
    countdown = state.countdown
    if countdown is None or countdown.state != "running":
        return state, decided
    if state.shop_cancelled:
        decided.append(closing(state, "countdown.cancelled", {"reason": "order.cancelled"}))
    elif state.provider_refunded:
        # The money went back already: an expiry would cancel and refund it again.
        decided.append(closing(state, "countdown.cancelled", {"reason": "order.refunded"}))
    elif state.approval is not None:
        decided.append(closing(state, "countdown.satisfied", {"verification": state.approval}))
    return state, decided


def _start(state: OrderState, started_at: datetime, config: CountdownConfig) -> NewEvent:
    order = state.order_id
    # Held, not overflowing, should a window reach past the year 9999.
    due_at = shifted(started_at, config.window)
    reminders = sorted(
        at for at in (shifted(due_at, -r) for r in config.reminders) if at > started_at
    )
    payload = {
        "order_id": order,
        "started_at": started_at.isoformat(),
        "due_at": due_at.isoformat(),
        "reminders": [r.isoformat() for r in reminders],
        "window_seconds": config.window.total_seconds(),
        "grace_seconds": config.grace.total_seconds(),
    }
    return decision(order, f"countdown.started:{order}", "countdown.started", payload, started_at)


def as_fold_event(event: NewEvent, recorded_at: datetime) -> FoldEvent:
    """A decision not yet recorded, as the fold would read it back."""
    return FoldEvent(
        position=0,
        provider=event.provider,
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        recorded_at=recorded_at,
        payload=msgspec.json.decode(event.payload_json),
    )


def on_timer(state: OrderState, now: datetime) -> TimerDecision:
    """Decisions when an order's timers fall due at ``now``."""
    countdown = state.countdown
    if countdown is None or countdown.state != "running":
        return TimerDecision(events=[])
    if state.approval is not None:
        satisfied = closing(state, "countdown.satisfied", {"verification": state.approval})
        return TimerDecision(events=[satisfied])
    if now >= countdown.expires_at:
        order = state.order_id
        payload = {
            "due_at": countdown.due_at.isoformat(),
            "expires_at": countdown.expires_at.isoformat(),
        }
        return TimerDecision(
            events=[
                closing(state, "countdown.expired", payload),
                decision(
                    order,
                    f"order.cancelled:{order}",
                    "order.cancelled",
                    {"order_id": order, "reason": "countdown.expired"},
                ),
            ]
        )
    reminders = [
        decision(
            state.order_id,
            f"countdown.reminder:{state.order_id}:{at.isoformat()}",
            "countdown.reminder_due",
            {
                "order_id": state.order_id,
                "reminder_at": at.isoformat(),
                "due_at": countdown.due_at.isoformat(),
            },
        )
        for at in countdown.reminders
        if at <= now and at not in countdown.reminded and not state.pending_submission
    ]
    return TimerDecision(events=reminders, expires_at=countdown.expires_at)
