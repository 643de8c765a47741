"""Reading provider bodies: event ids, types, streams, and bodies we refuse."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from api.providers.base import MAX_KEY_LENGTH, Normalised, parse_time
from api.providers.post_purchase import PostPurchase
from api.providers.veriff import Veriff
from api.rejections import MalformedBody

EXAMPLES = settings(max_examples=50, deadline=None)

VERIFF = Veriff(["secret"], "HOOKLEDGER_VERIFF_SECRET")
POST_PURCHASE = PostPurchase(["whsec_c2VjcmV0"], "HOOKLEDGER_POST_PURCHASE_SECRET")
PP_HEADERS = {"webhook-id": "msg_2x9", "webhook-timestamp": "1700000000"}


def one(found: list[Normalised]) -> Normalised:
    assert len(found) == 1
    return found[0]


def decision_body(
    session: str = "12df6045-3846-3e45-946a-14fa6136d78b",
    status: str = "approved",
    code: Any = 9001,
    decision_time: str | None = "2019-11-06T07:18:36.916Z",
    vendor_data: Any = "12345678",
) -> dict[str, Any]:
    """A decision webhook as Veriff documents it (trimmed)."""
    return {
        "status": "success",
        "verification": {
            "id": session,
            "code": code,
            "person": {"firstName": "Sarah", "lastName": "Morgan"},
            "reason": None,
            "status": status,
            "comments": [],
            "reasonCode": None,
            "vendorData": vendor_data,
            "decisionTime": decision_time,
            "acceptanceTime": "2019-11-06T07:15:27.000Z",
        },
        "technicalData": {"ip": "186.153.67.122"},
    }


def event_body(
    session: str = "f04bdb47-d3be-4b28-b028-a652feb060b5",
    attempt: str | None = "e30122d1-740b-4764-853f-470374a7abf4",
    action: str = "submitted",
    vendor_data: Any = "QWE123456",
) -> dict[str, Any]:
    """An event webhook as Veriff documents it."""
    return {
        "id": session,
        "attemptId": attempt,
        "feature": "selfid",
        "code": 7002,
        "action": action,
        "vendorData": vendor_data,
    }


# --- Veriff decision webhooks -------------------------------------------------------


def test_veriff_decision_reads_id_type_stream_and_time() -> None:
    found = one(VERIFF.normalise({}, decision_body()))
    assert found.event_id == (
        "decision:12df6045-3846-3e45-946a-14fa6136d78b:9001:approved:2019-11-06T07:18:36.916Z"
    )
    assert found.type == "verification.approved"
    assert found.order_id == "12345678"
    assert found.stream == "order-12345678"
    assert found.occurred_at == datetime(2019, 11, 6, 7, 18, 36, 916000, tzinfo=UTC)


@pytest.mark.parametrize("vendor_data", [None, "", "   "])
def test_veriff_decision_without_vendor_data_gets_a_stream_of_its_session(
    vendor_data: Any,
) -> None:
    found = one(VERIFF.normalise({}, decision_body(session="sess-1", vendor_data=vendor_data)))
    assert found.order_id is None
    assert found.stream == "veriff-sess-1"


def test_veriff_decision_accepts_an_integer_vendor_data() -> None:
    found = one(VERIFF.normalise({}, decision_body(vendor_data=42)))
    assert found.stream == "order-42"


def test_veriff_decision_reads_top_level_vendor_data_and_decision_time() -> None:
    body = decision_body()
    del body["verification"]["vendorData"]
    del body["verification"]["decisionTime"]
    body["vendorData"] = "top"
    body["decisionTime"] = "2020-01-01T00:00:00Z"
    found = one(VERIFF.normalise({}, body))
    assert found.stream == "order-top"
    assert found.event_id.endswith(":approved:2020-01-01T00:00:00Z")


def test_veriff_decision_leaves_missing_parts_of_the_event_id_empty() -> None:
    found = one(VERIFF.normalise({}, decision_body(session="s", code=None, decision_time=None)))
    assert found.event_id == "decision:s::approved:"
    assert found.occurred_at is None


def test_veriff_normalise_keeps_the_whole_body_as_payload() -> None:
    body = decision_body()
    assert one(VERIFF.normalise({}, body)).payload == body


statuses = st.sampled_from(
    ["approved", "declined", "resubmission_requested", "expired", "abandoned", "review"]
)
codes = st.sampled_from([9001, 9102, 9103, 9104, 9121]) | st.none()
decision_times = st.none() | st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1)
).map(lambda moment: moment.isoformat(timespec="milliseconds") + "Z")
sessions = st.uuids().map(str)
decisions = st.tuples(sessions, statuses, codes, decision_times)
# Any text an order id can be: Postgres text cannot hold NUL, and no read could
# serve an id with a "/", so intake refuses both.
order_ids = st.text(
    alphabet=st.characters(blacklist_characters="\x00/"), min_size=1, max_size=20
).filter(str.strip)


@EXAMPLES
@given(decision=decisions, vendor=order_ids)
def test_veriff_resent_decision_gets_the_same_event_id(
    decision: tuple[str, str, int | None, str | None], vendor: str
) -> None:
    session, status, code, moment = decision
    body = decision_body(session, status, code, moment, vendor)
    first = one(VERIFF.normalise({}, body))
    resent = one(VERIFF.normalise({"x-hmac-signature": "other"}, copy.deepcopy(body)))
    assert resent.event_id == first.event_id
    assert resent.stream == first.stream


@EXAMPLES
@given(a=decisions, b=decisions)
def test_veriff_different_decisions_get_different_event_ids(
    a: tuple[str, str, int | None, str | None], b: tuple[str, str, int | None, str | None]
) -> None:
    assume(a != b)
    first = one(VERIFF.normalise({}, decision_body(*a)))
    second = one(VERIFF.normalise({}, decision_body(*b)))
    assert first.event_id != second.event_id


# --- Veriff event webhooks ----------------------------------------------------------


def test_veriff_event_reads_id_type_and_stream() -> None:
    found = one(VERIFF.normalise({}, event_body()))
    assert found.event_id == (
        "event:f04bdb47-d3be-4b28-b028-a652feb060b5:e30122d1-740b-4764-853f-470374a7abf4:submitted"
    )
    assert found.type == "verification.submitted"
    assert found.stream == "order-QWE123456"


def test_veriff_event_without_vendor_data_gets_a_stream_of_its_session() -> None:
    found = one(VERIFF.normalise({}, event_body(session="s-9", attempt=None, vendor_data=None)))
    assert found.event_id == "event:s-9::submitted"
    assert found.stream == "veriff-s-9"


@EXAMPLES
@given(
    a=st.tuples(sessions, sessions, st.sampled_from(["started", "submitted"])),
    b=st.tuples(sessions, sessions, st.sampled_from(["started", "submitted"])),
)
def test_veriff_event_id_is_the_same_for_a_resend_and_differs_otherwise(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    first = one(VERIFF.normalise({}, event_body(*a)))
    assert one(VERIFF.normalise({}, event_body(*a))).event_id == first.event_id
    if a != b:
        assert one(VERIFF.normalise({}, event_body(*b))).event_id != first.event_id


# --- the simplified verification.updated shape --------------------------------------


def test_veriff_simplified_body_uses_its_id_as_event_id() -> None:
    body = {"event": "verification.updated", "id": "evt_test_123", "status": "approved"}
    found = one(VERIFF.normalise({}, body))
    assert found.event_id == "evt_test_123"
    assert found.type == "verification.approved"
    assert found.stream == "veriff-evt_test_123"
    assert found.order_id is None


def test_veriff_simplified_body_without_status_takes_its_type_from_event() -> None:
    body = {"event": "verification.updated", "id": "evt_1", "vendorData": "o-7"}
    found = one(VERIFF.normalise({}, body))
    assert found.type == "verification.updated"
    assert found.stream == "order-o-7"


# --- bodies Veriff could not have sent ----------------------------------------------

NOT_VERIFF: list[Any] = [
    [],
    "approved",
    42,
    None,
    {},
    {"status": "success"},
    {"id": "evt_1"},
    {"verification": {"status": "approved"}},
    {"verification": {"id": "s", "status": None}},
    {"verification": {"id": "s", "status": "not a name"}},
    {"verification": {"id": "", "status": "approved"}},
    {"verification": {"id": True, "status": "approved"}},
    {"verification": {"id": ["s"], "status": "approved"}},
    {"verification": {"id": "s", "status": "approved", "vendorData": {"order": 1}}},
    {"verification": {"id": "s", "status": "approved", "vendorData": False}},
    {"id": "s", "action": None},
    {"id": None, "action": "submitted"},
    {"id": "s", "action": "x" * 101},
    {"id": "evt", "status": 5},
    {"id": "evt", "event": ""},
    {"id": {"nested": 1}, "status": "approved"},
    {"id": 1.5, "status": "approved"},
]


@pytest.mark.parametrize("body", NOT_VERIFF)
def test_veriff_rejects_bodies_veriff_could_not_have_sent(body: Any) -> None:
    with pytest.raises(MalformedBody):
        VERIFF.normalise({}, body)


@pytest.mark.parametrize(
    "body",
    [
        decision_body(code={"nested": 1}),
        decision_body(code=[9001]),
        decision_body(decision_time="x" * 10_000),
        event_body(attempt="a" * 10_000),
    ],
    ids=["object-code", "list-code", "huge-decision-time", "huge-attempt-id"],
)
def test_veriff_rejects_id_parts_that_are_not_short_scalars(body: dict[str, Any]) -> None:
    with pytest.raises(MalformedBody):
        VERIFF.normalise({}, body)


def test_veriff_accepts_ids_up_to_the_key_length_and_rejects_longer() -> None:
    at_limit = "s" * MAX_KEY_LENGTH
    assert one(VERIFF.normalise({}, decision_body(session=at_limit))).event_id.startswith(
        "decision:" + at_limit + ":"
    )
    with pytest.raises(MalformedBody, match=r"verification\.id"):
        VERIFF.normalise({}, decision_body(session=at_limit + "s"))
    with pytest.raises(MalformedBody, match="vendorData"):
        VERIFF.normalise({}, decision_body(vendor_data="v" * (MAX_KEY_LENGTH + 1)))
    with pytest.raises(MalformedBody, match="id"):
        VERIFF.normalise({}, event_body(session="e" * (MAX_KEY_LENGTH + 1)))
    with pytest.raises(MalformedBody, match="id"):
        VERIFF.normalise({}, {"id": "i" * (MAX_KEY_LENGTH + 1), "status": "approved"})


# --- post-purchase (Standard Webhooks) ----------------------------------------------


def test_post_purchase_event_id_is_the_webhook_id_header() -> None:
    body = {"event": "order.created", "orderId": "A-1001", "total": 12.5}
    found = one(POST_PURCHASE.normalise(PP_HEADERS, body))
    assert found.event_id == "msg_2x9"
    assert found.type == "order.created"
    assert found.order_id == "A-1001"
    assert found.stream == "order-A-1001"
    assert found.payload == body


@EXAMPLES
@given(
    msg_id=st.text(
        alphabet=st.characters(blacklist_characters="\x00"), min_size=1, max_size=40
    ).filter(lambda v: v == v.strip() and v),
    order=st.integers(min_value=0, max_value=10**12) | st.uuids().map(str),
    kind=st.sampled_from(["order.created", "order.paid", "order.refunded", "order:v2.x-y"]),
)
def test_post_purchase_maps_header_and_body_fields(
    msg_id: str, order: int | str, kind: str
) -> None:
    headers = {**PP_HEADERS, "webhook-id": msg_id}
    found = one(POST_PURCHASE.normalise(headers, {"event": kind, "orderId": order}))
    assert (found.event_id, found.type, found.stream) == (msg_id, kind, f"order-{order}")


def test_post_purchase_occurred_at_prefers_occurred_at_then_created_at_then_timestamp() -> None:
    both = {"event": "order.created", "orderId": 1, "occurredAt": "2024-01-01T00:00:00Z"}
    both["createdAt"] = "2023-01-01T00:00:00Z"
    assert one(POST_PURCHASE.normalise(PP_HEADERS, both)).occurred_at == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    created = {"event": "order.created", "orderId": 1, "createdAt": 1_600_000_000}
    assert one(POST_PURCHASE.normalise(PP_HEADERS, created)).occurred_at == datetime.fromtimestamp(
        1_600_000_000, UTC
    )
    neither = {"event": "order.created", "orderId": 1, "occurredAt": "garbage"}
    assert one(POST_PURCHASE.normalise(PP_HEADERS, neither)).occurred_at == datetime.fromtimestamp(
        1_700_000_000, UTC
    )


@pytest.mark.parametrize(
    "body",
    [
        {"orderId": "1"},
        {"event": "order.created"},
        {"event": "order.created", "orderId": None},
        {"event": "order.created", "orderId": ""},
        {"event": "order.created", "orderId": "   "},
        {"event": "order.created", "orderId": True},
        {"event": "order.created", "orderId": {"id": 1}},
        {"event": "order.created", "orderId": "o" * (MAX_KEY_LENGTH + 1)},
        {"event": None, "orderId": "1"},
        {"event": "order created", "orderId": "1"},
        {"event": ".created", "orderId": "1"},
        {"event": "e" * 101, "orderId": "1"},
        {"event": 7, "orderId": "1"},
        ["order.created"],
        "order.created",
    ],
)
def test_post_purchase_rejects_a_body_without_usable_event_or_order_id(body: Any) -> None:
    with pytest.raises(MalformedBody):
        POST_PURCHASE.normalise(PP_HEADERS, body)


@pytest.mark.parametrize("msg_id", ["", "   ", "m" * (MAX_KEY_LENGTH + 1)])
def test_post_purchase_rejects_an_unusable_webhook_id(msg_id: str) -> None:
    headers = {**PP_HEADERS, "webhook-id": msg_id}
    with pytest.raises(MalformedBody, match="webhook-id"):
        POST_PURCHASE.normalise(headers, {"event": "order.created", "orderId": "1"})


def test_post_purchase_accepts_ids_exactly_at_the_key_length() -> None:
    headers = {**PP_HEADERS, "webhook-id": "m" * MAX_KEY_LENGTH}
    body = {"event": "order.created", "orderId": "o" * MAX_KEY_LENGTH}
    found = one(POST_PURCHASE.normalise(headers, body))
    assert len(found.event_id) == MAX_KEY_LENGTH
    assert found.stream == "order-" + "o" * MAX_KEY_LENGTH


# --- times in bodies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (946684800, datetime(2000, 1, 1, tzinfo=UTC)),
        (1709287200.5, datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        (None, None),
        (True, None),
        ("yesterday", None),
        ("x" * 100_000, None),
        ({"t": 1}, None),
    ],
)
def test_parse_time_reads_iso_and_epoch_and_ignores_the_rest(
    value: Any, expected: datetime | None
) -> None:
    assert parse_time(value, "t") == expected


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        0,
        1.5,
        -(10**20),
        10**20,
        10**4000,
        1e308,
        4102444800,  # 2100-01-01
    ],
)
def test_parse_time_refuses_a_time_outside_the_accepted_range_naming_the_field(
    value: Any,
) -> None:
    with pytest.raises(MalformedBody, match="createdAt"):
        parse_time(value, "createdAt")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_post_purchase_body_with_out_of_range_time_is_not_a_server_error(value: str) -> None:
    # Signed, valid JSON: must end as a 4xx (MalformedBody) or occurred_at=None, never a 500.
    body = {"event": "order.created", "orderId": "1", "occurredAt": value}
    try:
        found = one(POST_PURCHASE.normalise(PP_HEADERS, body))
    except MalformedBody:
        return
    assert found.occurred_at is None or found.occurred_at.tzinfo is not None


def test_veriff_simplified_id_accepts_integers() -> None:
    found = one(VERIFF.normalise({}, {"id": 123, "status": "approved"}))
    assert found.event_id == "123"
