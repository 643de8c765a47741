"""Signed bodies at their limits: the intake refuses them cleanly or records
something every fold, the countdown policy and the timers can use.

A delivery here goes the intake's own way (signature check, JSON decoding,
the provider's adapter, the ledger records) with valid signatures; whatever is
accepted is folded, decided on and fired at several moments without error, and
turned into the projections' rows.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.intake import decode_json, to_new_events
from api.providers.base import Adapter
from api.rejections import MalformedBody
from events.errors import InputError
from events.model import NewEvent
from projections.facts import FoldEvent, order_id_of
from projections.fold import fold
from projections.projectors import PROJECTIONS
from scheduler.countdown import CountdownConfig, on_events, on_timer
from tests.support import SOURCE, provider_adapters, signed

ADAPTERS: dict[str, Adapter] = provider_adapters()
CONFIGS = (
    CountdownConfig(),
    CountdownConfig(window=timedelta(days=10**6), reminders=(timedelta(days=10**6 + 1),)),
    CountdownConfig(window=timedelta(seconds=1), reminders=(), grace=timedelta(days=10**8)),
)
ORDERS = ("1", "2")

# Times at and past every limit: the accepted range's ends, datetime's own ends,
# offsets that push a time over them, epoch seconds of every size.
time_texts = st.sampled_from([
    "2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z", "2099-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00", "0001-01-01", "2026-05-01T12:00:00", "2026-05-01T12:00:00+14:00",
    "not a time", "", "2026-13-01T00:00:00Z",
])  # fmt: skip
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 946684800, 4102444799, 4102444800, 2**63, -(2**63), 10**4000, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)
strings = st.one_of(st.text(max_size=20), st.just("x" * 100_000), st.just("order.created"))
scalars = st.one_of(st.none(), st.booleans(), time_texts, numbers, strings)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
types = st.sampled_from(["order.created", "order.cancelled", "order.paid", "charge.refunded"])
order_ids = st.one_of(st.sampled_from(ORDERS), values)


def body_of(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Some of ``fields`` (each from its strategy), the rest left out."""
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    return {name: draw(fields[name]) for name in chosen}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, Any, dict[str, str]]:
    """(provider, JSON body, extra headers) for one delivery."""
    provider = draw(st.sampled_from(sorted(ADAPTERS)))
    anything = st.one_of(time_texts, numbers, values)
    extra: dict[str, str] = {}
    body: Any
    if provider == "post-purchase":
        body = {"event": draw(types), "orderId": draw(order_ids)} | body_of(draw, {
            "createdAt": anything, "occurredAt": anything, "orderTotal": anything,
            "currency": values, "customerEmail": values, "transactionId": values,
        })  # fmt: skip
    elif provider == "veriff":
        status = draw(
            st.sampled_from(["approved", "declined", "submitted", "resubmission_requested"])
        )
        verification = {"id": draw(st.sampled_from(["s1", "s2"])), "status": status,
                        "vendorData": draw(order_ids)} | body_of(draw, {
            "decisionTime": anything, "submissionTime": anything, "code": numbers})  # fmt: skip
        body = draw(st.sampled_from([
            {"status": "success", "verification": verification},
            {"id": "s1", "action": status, "vendorData": verification["vendorData"]}
            | body_of(draw, {"acceptanceTime": anything, "time": anything}),
            {"id": "e1", "event": draw(types), "vendorData": verification["vendorData"]}
            | body_of(draw, {"createdAt": anything, "time": anything}),
        ]))  # fmt: skip
    elif provider == "shopify":
        extra["x-shopify-topic"] = draw(st.sampled_from(["orders/create", "orders/cancelled",
                                                         "refunds/create"]))  # fmt: skip
        if draw(st.booleans()):
            extra["x-shopify-triggered-at"] = draw(time_texts)
        body = {"id": draw(order_ids), "order_id": draw(order_ids)} | body_of(draw, {
            "created_at": anything, "updated_at": anything, "total_price": anything,
            "currency": values, "email": values, "customer": values})  # fmt: skip
    elif provider == "stripe":
        body = {"id": "evt_1", "type": draw(types), "data": {"object": {
            "id": "ch_1", "metadata": {"order_id": draw(order_ids)}}}} | body_of(draw, {
            "created": anything, "createdAt": anything})  # fmt: skip
    elif provider == "authorizenet":
        body = {"notificationId": "n1", "eventType": draw(st.sampled_from([
            "net.authorize.payment.refund.created", "net.authorize.payment.authcapture.created"])),
            "payload": {"invoiceNumber": draw(order_ids), "id": draw(values)}} | body_of(draw, {
            "eventDate": anything})  # fmt: skip
    elif provider == "sendgrid":
        body = [{"sg_event_id": f"sg{k}", "event": "delivered", "order_id": draw(order_ids)}
                | body_of(draw, {"timestamp": anything, "sg_message_id": values})
                for k in range(draw(st.integers(1, 3)))]  # fmt: skip
    else:
        body = {"type": draw(types), "data": {"order_id": draw(order_ids)}
                | body_of(draw, {"created_at": anything})} | body_of(draw, {
            "createdAt": anything})  # fmt: skip
    return provider, body, extra


def receive(provider: str, body: Any, extra: dict[str, str]) -> list[NewEvent]:
    """What the intake records for a signed delivery of ``body``; InputError if refused."""
    raw = json.dumps(body).encode()
    headers = {**signed(provider, raw, topic=extra.get("x-shopify-topic", "orders/create")),
               **extra}  # fmt: skip
    adapter = ADAPTERS[provider]
    adapter.verify(headers, raw, time.time())
    parsed, payload_json = decode_json(raw)
    found = adapter.normalise(headers, parsed)
    return to_new_events(adapter, found, payload_json, raw, headers, None)


def as_recorded(event: NewEvent, position: int, at: datetime) -> FoldEvent:
    payload = msgspec.json.decode(event.payload_json)
    return FoldEvent(position, event.provider, event.event_id, event.type, event.occurred_at,
                     at, payload)  # fmt: skip


def play(streams: dict[str, list[FoldEvent]], config: CountdownConfig, now: datetime) -> None:
    """Fold every order's stream, decide on it, fire its timers, build its rows."""
    for order, stream in streams.items():
        state, decided = on_events(order, stream, config, now)
        recorded = [*stream, *(as_recorded(d, 0, now) for d in decided)]
        state = fold(order, recorded)
        for projection in PROJECTIONS.values():
            projection.rows(state)
        for moment in {now, *(t.due_at for t in state.timers)}:
            for decision in on_timer(state, moment).events:
                recorded.append(as_recorded(decision, 0, moment))
        fold(order, recorded)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(deliveries(), min_size=1, max_size=4), st.sampled_from(CONFIGS))
def test_whatever_the_intake_accepts_every_fold_and_decision_can_use(
    batch: list[tuple[str, Any, dict[str, str]]], config: CountdownConfig
) -> None:
    now = datetime.now(UTC)
    streams: dict[str, list[FoldEvent]] = {}
    for provider, body, extra in batch:
        try:
            events = receive(provider, body, extra)
        except InputError:
            continue
        for event in events:
            order = order_id_of(event.stream)
            if order is not None:
                streams.setdefault(order, []).append(as_recorded(event, 0, now))
    play(streams, config, now)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_a_year_9999_in_any_time_field_is_refused_naming_the_field(provider: str) -> None:
    far = "9999-12-31T23:59:59Z"
    bodies: dict[str, tuple[Any, dict[str, str], str]] = {
        "post-purchase": ({"event": "order.created", "orderId": "1", "createdAt": far}, {},
                          "createdAt"),
        "veriff": ({"verification": {"id": "s", "status": "approved", "vendorData": "1",
                                     "submissionTime": far}}, {}, "submissionTime"),
        "shopify": ({"id": 1, "created_at": far}, {}, "created_at"),
        "stripe": ({"id": "evt", "type": "charge.refunded", "created": 253402300799}, {},
                   "created"),
        "authorizenet": ({"notificationId": "n", "eventType": "net.authorize.payment.void.created",
                          "eventDate": far}, {}, "eventDate"),
        "sendgrid": ([{"sg_event_id": "e", "event": "open", "timestamp": 10**20}], {},
                     "timestamp"),
        SOURCE: ({"type": "order.created", "data": {"order_id": "1"}, "createdAt": far}, {},
                 "createdAt"),
    }  # fmt: skip
    body, extra, field = bodies[provider]
    with pytest.raises(MalformedBody, match=field):
        receive(provider, body, extra)


def test_an_order_recorded_with_a_year_9999_before_the_intake_checked_still_counts_down() -> None:
    # The ledger is append-only: such an event stays, and the folds must read past it.
    now = datetime(2026, 5, 1, tzinfo=UTC)
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    body = {"event": "order.created", "orderId": "1", "createdAt": "9999-12-31T23:59:59Z"}
    created = FoldEvent(1, "post-purchase", "m1", "order.created", far, now, body)
    state, decided = on_events("1", [created], CountdownConfig(), now)
    assert [d.type for d in decided] == ["countdown.started"]
    assert state.countdown is not None
    assert state.countdown.due_at == now + timedelta(hours=72)
