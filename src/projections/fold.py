"""The fold: one order's events, in any arrival order, to its projected state.

Pure: no database, no clock. Every projection and every scheduling decision
starts from ``fold``; the same events always give the same state, so a rebuild
equals the live projection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from events.times import any_time, shifted
from projections.facts import (
    FINAL_DECISIONS,
    HOOKLEDGER,
    Decision,
    EventLike,
    OrderFacts,
    moment,
    order_facts,
    payment_transaction,
    veriff_decision,
)

# A later status wins over an earlier one whatever order the events came in.
_ORDER_STATUSES = ("created", "paid", "cancelled", "refunded")
# Payment events that move an order (by their provider's names, see the README's
# Providers): money taken makes it paid, money given back refunded. An
# authorisation takes no money; a void gives none back (nothing was taken).
_PAID_TYPES = frozenset({"payment.captured", "payment_intent.succeeded", "charge.succeeded",
                         "charge.captured"})  # fmt: skip
_REFUNDED_TYPES = frozenset({"payment.refunded", "charge.refunded"})
# Every event type that can move an order's status besides its own order.* events.
PAYMENT_TYPES = _PAID_TYPES | _REFUNDED_TYPES
# The types by which a payment provider gives an order's money back.
REFUNDING_TYPES = _REFUNDED_TYPES
_LONGEST_SECONDS = timedelta.max.total_seconds() // 2
TERMINAL_STATES = {
    "countdown.satisfied": "satisfied",
    "countdown.expired": "expired",
    "countdown.cancelled": "cancelled",
}


class OrderRow(msgspec.Struct, frozen=True):
    order_id: str
    created_at: datetime | None
    total: Decimal | None
    currency: str | None
    customer: str | None
    status: str


class VerificationRow(msgspec.Struct, frozen=True):
    order_id: str
    sessions: tuple[str, ...]
    latest_decision: str | None
    decided_at: datetime | None
    submitted_at: datetime | None
    attempts: int


class CountdownRow(msgspec.Struct, frozen=True):
    order_id: str
    started_at: datetime
    due_at: datetime
    expires_at: datetime
    reminders: tuple[datetime, ...]
    reminded: tuple[datetime, ...]
    state: str
    closed_at: datetime | None


class Timer(msgspec.Struct, frozen=True):
    order_id: str
    timer: str
    due_at: datetime


class OrderState(msgspec.Struct, frozen=True):
    """Everything known about one order, plus what the policy and timers need."""

    order_id: str
    order: OrderRow | None
    verification: VerificationRow | None
    countdown: CountdownRow | None
    timers: tuple[Timer, ...]
    ordered_at: datetime | None  # when order.created happened (None: not seen yet)
    facts: OrderFacts
    shop_cancelled: bool
    # Money given back by the payment provider (not by the countdown's own refund).
    provider_refunded: bool
    approval: str | None  # event id of an approval that satisfies the countdown
    pending_submission: bool


class _Started(msgspec.Struct, frozen=True):
    started_at: datetime
    due_at: datetime
    reminders: tuple[datetime, ...]
    grace: timedelta = timedelta(0)

    @property
    def grace_ends(self) -> datetime:
        return shifted(self.due_at, self.grace)


def _started(body: dict[str, Any]) -> _Started | None:
    """A ``countdown.started`` decision's times; None if it cannot be read (it is
    hookledger's own, so only a planted or damaged event gets here)."""
    started_at, due_at = any_time(body.get("started_at")), any_time(body.get("due_at"))
    if started_at is None or due_at is None:
        return None
    listed = body.get("reminders")
    reminders = [any_time(r) for r in listed] if isinstance(listed, list) else []
    return _Started(
        started_at=started_at,
        due_at=due_at,
        reminders=tuple(r for r in reminders if r is not None),
        grace=_duration(body.get("grace_seconds")),
    )


def _duration(seconds: Any) -> timedelta:
    """Seconds as a duration, held between zero and what ``timedelta`` can hold."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return timedelta(0)
    if not math.isfinite(seconds) or seconds <= 0:
        return timedelta(0)
    return timedelta(seconds=min(seconds, _LONGEST_SECONDS))


class _Collected:
    """What one pass over the events gathers, before anything is derived."""

    def __init__(self) -> None:
        self.statuses: set[str] = set()
        self.ordered_at: datetime | None = None
        self.facts: list[tuple[int, datetime, str, OrderFacts]] = []
        self.transaction: str | None = None
        self.shop_cancelled = False
        self.provider_refunded = False
        self.decisions: list[tuple[Decision, EventLike]] = []
        self.started: _Started | None = None
        self.terminal: tuple[str, datetime] | None = None
        self.reminded: set[datetime] = set()

    def add(self, event: EventLike) -> None:
        kind = event.type
        if kind.startswith("order."):
            self._order_event(event)
        elif kind in _PAID_TYPES or kind in _REFUNDED_TYPES or kind == "payment.authorized":
            self._payment_event(event)
        elif event.provider == HOOKLEDGER:
            self._decision_event(event)
        else:
            decision = veriff_decision(event)
            if decision is not None:
                self.decisions.append((decision, event))

    def _payment_event(self, event: EventLike) -> None:
        kind = event.type
        if kind in ("payment.captured", "payment.authorized"):
            self.transaction = self.transaction or payment_transaction(event)
        if kind in _PAID_TYPES:
            self.statuses.add("paid")
        elif kind in _REFUNDED_TYPES and not _partial_refund(event):
            self.statuses.add("refunded")
            self.provider_refunded = True

    def _order_event(self, event: EventLike) -> None:
        status = event.type.removeprefix("order.")
        if status in _ORDER_STATUSES:
            self.statuses.add(status)
        if event.type == "order.created":
            facts = order_facts(event)
            # A resent order.created (a new delivery id) must not move the clock.
            when = facts.created_at or moment(event)
            self.ordered_at = when if self.ordered_at is None else min(self.ordered_at, when)
            self.facts.append((0, moment(event), event.event_id, facts))
        elif event.provider != HOOKLEDGER:
            self.facts.append((1, moment(event), event.event_id, order_facts(event)))
        if event.type == "order.cancelled" and event.provider != HOOKLEDGER:
            self.shop_cancelled = True

    def _decision_event(self, event: EventLike) -> None:
        body: dict[str, Any] = event.payload if isinstance(event.payload, dict) else {}
        if event.type == "countdown.started":
            self.started = _started(body) or self.started
        elif event.type in TERMINAL_STATES:
            self.terminal = (TERMINAL_STATES[event.type], moment(event))
        elif event.type == "countdown.reminder_due":
            reminded = any_time(body.get("reminder_at"))
            if reminded is not None:
                self.reminded.add(reminded)
        elif event.type == "action.succeeded" and body.get("action") == "refund":
            self.statuses.add("refunded")


def _partial_refund(event: EventLike) -> bool:
    """A Stripe charge refunded in part (``refunded`` false): the order stays paid."""
    body = event.payload if isinstance(event.payload, dict) else {}
    data = body.get("data")
    charge = data.get("object") if isinstance(data, dict) else None
    return isinstance(charge, dict) and charge.get("refunded") is False


def fold(order_id: str, events: Iterable[EventLike]) -> OrderState:
    """The state of one order from its events, whatever order they arrived in."""
    seen = _Collected()
    for event in events:
        seen.add(event)
    facts = _merge(seen.facts, seen.transaction)
    started = seen.started
    pending = _pending_submission(seen.decisions, started.due_at if started else None)
    approval = _approval(seen.decisions, started)
    countdown = _countdown(order_id, seen, pending) if started else None
    return OrderState(
        order_id=order_id,
        order=_order(order_id, seen, facts),
        verification=_verification(order_id, seen.decisions),
        countdown=countdown,
        timers=_timers(countdown, pending),
        ordered_at=seen.ordered_at,
        facts=facts,
        shop_cancelled=seen.shop_cancelled,
        provider_refunded=seen.provider_refunded,
        approval=approval,
        pending_submission=pending,
    )


def _merge(
    found: list[tuple[int, datetime, str, OrderFacts]], transaction: str | None
) -> OrderFacts:
    """The order's details: the earliest order.created first, then other order
    events filling what it lacks; never dependent on arrival order."""
    merged: dict[str, Any] = {}
    for *_, facts in sorted(found, key=lambda item: item[:3]):
        for field in OrderFacts.__struct_fields__:
            if merged.get(field) is None:
                merged[field] = getattr(facts, field)
    if merged.get("transaction_id") is None:
        merged["transaction_id"] = transaction
    return OrderFacts(**merged)


def _order(order_id: str, seen: _Collected, facts: OrderFacts) -> OrderRow | None:
    if not seen.statuses:
        return None
    status = max(seen.statuses, key=_ORDER_STATUSES.index)
    return OrderRow(
        order_id=order_id,
        created_at=seen.ordered_at,
        total=facts.total,
        currency=facts.currency,
        customer=facts.customer,
        status=status,
    )


def _verification(
    order_id: str, decisions: list[tuple[Decision, EventLike]]
) -> VerificationRow | None:
    if not decisions:
        return None
    final = sorted(
        ((d, e) for d, e in decisions if d.status in FINAL_DECISIONS),
        key=lambda pair: (pair[0].at, pair[1].recorded_at, pair[1].event_id),
    )
    submissions = [d.submitted_at for d, _ in decisions if d.submitted_at is not None]
    latest = final[-1][0] if final else None
    return VerificationRow(
        order_id=order_id,
        sessions=tuple(sorted({d.session for d, _ in decisions if d.session})),
        latest_decision=latest.status if latest else None,
        decided_at=latest.at if latest else None,
        submitted_at=min(submissions) if submissions else None,
        attempts=len(final),
    )


def _pending_submission(
    decisions: list[tuple[Decision, EventLike]], due_at: datetime | None
) -> bool:
    """True when a session submitted by the due time still waits for its decision."""
    if due_at is None:
        return False
    latest: dict[str, tuple[datetime, int, str, Decision]] = {}
    for decision, event in decisions:
        key = (decision.at, 0 if decision.status == "submitted" else 1, event.event_id, decision)
        current = latest.get(decision.session)
        if current is None or key[:3] > current[:3]:
            latest[decision.session] = key
    return any(
        d.status == "submitted" and d.submitted_at is not None and d.submitted_at <= due_at
        for *_, d in latest.values()
    )


def _approval(decisions: list[tuple[Decision, EventLike]], started: _Started | None) -> str | None:
    """An approval that counts: its session submitted by the due time (by Veriff's
    submission time or a ``submitted`` event, else the decision's own time), and
    the decision recorded within the grace period after the due time."""
    if started is None:
        return None
    submitted: dict[str, datetime] = {}
    for decision, _ in decisions:
        if decision.status == "submitted" and decision.submitted_at is not None:
            earliest = submitted.get(decision.session, decision.submitted_at)
            submitted[decision.session] = min(earliest, decision.submitted_at)
    qualifying = [
        event
        for decision, event in decisions
        if decision.status == "approved"
        and min(decision.submitted_at or decision.at, submitted.get(decision.session, decision.at))
        <= started.due_at
        and event.recorded_at <= started.grace_ends
    ]
    if not qualifying:
        return None
    return min(qualifying, key=lambda e: (e.recorded_at, e.event_id)).event_id


def _countdown(order_id: str, seen: _Collected, pending: bool) -> CountdownRow:
    started = seen.started
    assert started is not None
    state, closed_at = seen.terminal if seen.terminal else ("running", None)
    return CountdownRow(
        order_id=order_id,
        started_at=started.started_at,
        due_at=started.due_at,
        expires_at=started.grace_ends if pending else started.due_at,
        reminders=started.reminders,
        reminded=tuple(sorted(seen.reminded)),
        state=state,
        closed_at=closed_at,
    )


def _timers(countdown: CountdownRow | None, pending: bool) -> tuple[Timer, ...]:
    if countdown is None or countdown.state != "running":
        return ()
    timers = [Timer(countdown.order_id, "expire", countdown.expires_at)]
    if not pending:
        timers.extend(
            Timer(countdown.order_id, f"reminder:{at.isoformat()}", at)
            for at in countdown.reminders
            if at not in countdown.reminded
        )
    return tuple(timers)
