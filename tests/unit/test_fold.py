"""The folds and the countdown rules, without a database.

A small simulated ledger plays the policy and the timers over random arrival
orders: whatever the order, the rules' invariants hold and the fold of the
final stream does not depend on the order its events came in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import NewEvent
from projections.facts import FoldEvent
from projections.fold import fold
from scheduler.countdown import CountdownConfig, on_events, on_timer

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = CountdownConfig(
    window=timedelta(hours=72), reminders=(timedelta(hours=24),), grace=timedelta(hours=6)
)
ORDER = "1001"


class Ledger:
    """Events of one order in arrival order, unique by (provider, event_id)."""

    def __init__(self) -> None:
        self.events: list[FoldEvent] = []

    def record(self, event: FoldEvent) -> None:
        if any((e.provider, e.event_id) == (event.provider, event.event_id) for e in self.events):
            return
        self.events.append(msgspec.structs.replace(event, position=len(self.events) + 1))

    def decide(self, decisions: list[NewEvent], now: datetime) -> None:
        for d in decisions:
            self.record(
                FoldEvent(
                    0,
                    d.provider,
                    d.event_id,
                    d.type,
                    d.occurred_at,
                    now,
                    msgspec.json.decode(d.payload_json),
                )
            )

    def types(self) -> list[str]:
        return [e.type for e in self.events]


def order_created(at: datetime, recorded: datetime, event_id: str = "msg-1") -> FoldEvent:
    body = {"event": "order.created", "orderId": ORDER, "orderTotal": 20,
            "customerEmail": "c@example.com", "createdAt": at.isoformat()}  # fmt: skip
    return FoldEvent(0, "post-purchase", event_id, "order.created", at, recorded, body)


def veriff(status: str, session: str, at: datetime, recorded: datetime) -> FoldEvent:
    if status == "submitted":
        body: dict[str, Any] = {"id": session, "action": "submitted", "vendorData": ORDER}
        return FoldEvent(0, "veriff", f"event:{session}::submitted", "verification.submitted",
                         at, recorded, body)  # fmt: skip
    body = {"verification": {"id": session, "status": status, "vendorData": ORDER,
                             "decisionTime": at.isoformat()}}  # fmt: skip
    return FoldEvent(0, "veriff", f"decision:{session}:{status}:{at.isoformat()}",
                     f"verification.{status}", at, recorded, body)  # fmt: skip


def shop_cancelled(recorded: datetime) -> FoldEvent:
    body = {"event": "order.cancelled", "orderId": ORDER}
    return FoldEvent(0, "post-purchase", "msg-cancel", "order.cancelled", recorded, recorded, body)


hours = st.integers(min_value=-10, max_value=100).map(lambda h: timedelta(hours=h))


@st.composite
def deliveries(draw: st.DrawFn) -> list[FoldEvent]:
    """Provider events of one order, each with the time it reaches us."""
    events = [order_created(T0, T0 + draw(st.integers(0, 5)) * timedelta(hours=1))]
    for n in range(draw(st.integers(0, 4))):
        status = draw(st.sampled_from(["approved", "declined", "resubmission_requested",
                                       "submitted"]))  # fmt: skip
        at = T0 + draw(hours)
        delay = timedelta(minutes=draw(st.integers(0, 600)))
        events.append(veriff(status, f"s{draw(st.integers(0, 2))}", at, at + delay + timedelta(n)))
    if draw(st.booleans()) and draw(st.booleans()):
        events.append(shop_cancelled(T0 + draw(hours)))
    return events


def play(arrivals: list[FoldEvent]) -> Ledger:
    """Deliver events in order of their arrival time, running the policy after
    each and the timers hourly, as the service would."""
    ledger = Ledger()
    queue = sorted(arrivals, key=lambda e: e.recorded_at)
    clock = min(e.recorded_at for e in queue)
    end = T0 + timedelta(hours=200)
    while clock <= end:
        while queue and queue[0].recorded_at <= clock:
            ledger.record(queue.pop(0))
            _, decided = on_events(ORDER, ledger.events, CONFIG, clock)
            ledger.decide(decided, clock)
        ledger.decide(on_timer(fold(ORDER, ledger.events), clock).events, clock)
        _, decided = on_events(ORDER, ledger.events, CONFIG, clock)
        ledger.decide(decided, clock)
        clock += timedelta(minutes=30)
    return ledger


@settings(max_examples=150)
@given(deliveries())
def test_every_countdown_ends_exactly_once_and_never_both_satisfied_and_expired(
    arrivals: list[FoldEvent],
) -> None:
    types = play(arrivals).types()
    ends = [t for t in types if t in ("countdown.satisfied", "countdown.expired",
                                      "countdown.cancelled")]  # fmt: skip
    assert types.count("countdown.started") == 1
    assert len(ends) == 1, types
    assert types.count("order.cancelled") <= 2


@settings(max_examples=150)
@given(deliveries())
def test_an_approval_received_before_the_due_time_always_satisfies(
    arrivals: list[FoldEvent],
) -> None:
    due = T0 + CONFIG.window
    early_approval = any(
        e.type == "verification.approved" and e.recorded_at < due and e.occurred_at <= due  # type: ignore[operator]
        for e in arrivals
    )
    # An approval counts once the countdown exists: when both it and the order
    # have arrived. A shop's cancel that came before that moment wins.
    created = min(e.recorded_at for e in arrivals if e.type == "order.created")
    cancelled_first = any(
        e.type == "order.cancelled"
        and all(
            e.recorded_at < max(a.recorded_at, created)
            for a in arrivals
            if a.type == "verification.approved"
        )
        for e in arrivals
    )
    types = play(arrivals).types()
    if early_approval and not cancelled_first:
        assert "countdown.satisfied" in types, types
        assert "countdown.expired" not in types


@settings(max_examples=100)
@given(deliveries(), st.randoms(use_true_random=False))
def test_the_fold_of_a_stream_does_not_depend_on_arrival_order(
    arrivals: list[FoldEvent], random: Any
) -> None:
    ledger = play(arrivals)
    shuffled = list(ledger.events)
    random.shuffle(shuffled)
    assert fold(ORDER, shuffled) == fold(ORDER, ledger.events)


def test_a_decision_before_the_due_time_for_a_submission_before_it_satisfies_within_grace() -> None:
    due = T0 + CONFIG.window
    arrivals = [
        order_created(T0, T0),
        veriff("submitted", "s1", due - timedelta(minutes=5), due - timedelta(minutes=5)),
        veriff("approved", "s1", due + timedelta(hours=2), due + timedelta(hours=2)),
    ]
    ledger = play(arrivals)
    assert "countdown.satisfied" in ledger.types()
    assert "countdown.expired" not in ledger.types()


def test_a_submission_before_the_due_time_that_is_never_decided_expires_after_the_grace() -> None:
    due = T0 + CONFIG.window
    arrivals = [
        order_created(T0, T0),
        veriff("submitted", "s1", due - timedelta(minutes=5), due - timedelta(minutes=5)),
    ]
    ledger = play(arrivals)
    expired = [e for e in ledger.events if e.type == "countdown.expired"]
    assert len(expired) == 1
    assert expired[0].recorded_at >= due + CONFIG.grace


def test_a_declined_decision_after_the_due_time_expires_at_once() -> None:
    due = T0 + CONFIG.window
    decided = due + timedelta(hours=1)
    arrivals = [
        order_created(T0, T0),
        veriff("submitted", "s1", due - timedelta(hours=1), due - timedelta(hours=1)),
        veriff("declined", "s1", decided, decided),
    ]
    expired = [e for e in play(arrivals).events if e.type == "countdown.expired"]
    assert expired and expired[0].recorded_at < decided + timedelta(hours=1)


def test_an_approval_after_the_due_time_without_an_earlier_submission_does_not_satisfy() -> None:
    due = T0 + CONFIG.window
    late = due + timedelta(hours=1)
    ledger = play([order_created(T0, T0), veriff("approved", "s1", late, late)])
    assert "countdown.expired" in ledger.types()
    assert "countdown.satisfied" not in ledger.types()


def test_reminders_go_out_before_the_due_time_while_nothing_is_submitted() -> None:
    ledger = play([order_created(T0, T0)])
    reminders = [e for e in ledger.events if e.type == "countdown.reminder_due"]
    assert len(reminders) == 1
    assert reminders[0].payload["reminder_at"] == (T0 + timedelta(hours=48)).isoformat()


def test_the_order_projection_reads_the_shop_s_details() -> None:
    state = fold(ORDER, [order_created(T0, T0)])
    assert state.order is not None
    assert (state.order.status, str(state.order.total), state.order.customer) == (
        "created", "20", "c@example.com")  # fmt: skip


def payment(kind: str, provider: str, n: int, body: dict[str, Any] | None = None) -> FoldEvent:
    at = T0 + timedelta(minutes=n)
    return FoldEvent(0, provider, f"pay-{kind}-{n}", kind, at, at, body or {})


PAYMENTS = {
    "paid": [("payment.captured", "authorizenet"), ("payment_intent.succeeded", "stripe"),
             ("charge.succeeded", "stripe"), ("order.paid", "shopify")],
    "refunded": [("payment.refunded", "authorizenet"), ("charge.refunded", "stripe")],
    "unchanged": [("payment.authorized", "authorizenet"), ("payment.voided", "authorizenet")],
}  # fmt: skip


def test_every_providers_payment_events_move_the_order_to_paid_then_refunded() -> None:
    for moves_to, kinds in PAYMENTS.items():
        for kind, provider in kinds:
            state = fold(ORDER, [order_created(T0, T0), payment(kind, provider, 1)])
            assert state.order is not None
            assert state.order.status == ("created" if moves_to == "unchanged" else moves_to), kind


def test_a_charge_refunded_in_part_leaves_the_order_paid() -> None:
    part = {"data": {"object": {"refunded": False, "amount_refunded": 100}}}
    whole = {"data": {"object": {"refunded": True, "amount_refunded": 5990}}}
    paid = payment("charge.succeeded", "stripe", 1)
    state = fold(
        ORDER, [order_created(T0, T0), paid, payment("charge.refunded", "stripe", 2, part)]
    )
    assert state.order is not None and state.order.status == "paid"
    state = fold(
        ORDER, [order_created(T0, T0), paid, payment("charge.refunded", "stripe", 3, whole)]
    )
    assert state.order is not None and state.order.status == "refunded"


payment_events = st.lists(
    st.sampled_from([k for kinds in PAYMENTS.values() for k in kinds]), max_size=6
).map(lambda kinds: [payment(kind, provider, n) for n, (kind, provider) in enumerate(kinds)])


@settings(max_examples=200)
@given(events=payment_events, shuffle=st.randoms(use_true_random=False))
def test_an_orders_status_from_payments_is_the_furthest_whatever_the_arrival_order(
    events: list[FoldEvent], shuffle: Any
) -> None:
    arrivals = [order_created(T0, T0), *events]
    status = fold(ORDER, arrivals).order.status  # type: ignore[union-attr]
    shuffle.shuffle(arrivals)
    assert fold(ORDER, arrivals).order.status == status  # type: ignore[union-attr]
    kinds = {e.type for e in events}
    refunded = {k for k, _ in PAYMENTS["refunded"]}
    paid = {k for k, _ in PAYMENTS["paid"]}
    expected = "refunded" if kinds & refunded else "paid" if kinds & paid else "created"
    assert status == expected


def test_a_providers_refund_closes_the_countdown_so_expiry_never_refunds_again() -> None:
    _, started = on_events(ORDER, [order_created(T0, T0)], CONFIG, T0)
    assert [e.type for e in started] == ["countdown.started"]
    recorded = [order_created(T0, T0), *(_as_recorded(e, T0) for e in started)]
    refund = payment("charge.refunded", "stripe", 5, {"data": {"object": {"refunded": True}}})
    _, decided = on_events(ORDER, [*recorded, refund], CONFIG, T0 + timedelta(minutes=5))
    assert [(e.type, msgspec.json.decode(e.payload_json)["reason"]) for e in decided] == [
        ("countdown.cancelled", "order.refunded")
    ]
    # A partial refund leaves the countdown running.
    part = payment("charge.refunded", "stripe", 6, {"data": {"object": {"refunded": False}}})
    _, decided = on_events(ORDER, [*recorded, part], CONFIG, T0 + timedelta(minutes=6))
    assert decided == []


def _as_recorded(event: NewEvent, at: datetime) -> FoldEvent:
    body = msgspec.json.decode(event.payload_json)
    return FoldEvent(0, event.provider, event.event_id, event.type, event.occurred_at, at, body)
