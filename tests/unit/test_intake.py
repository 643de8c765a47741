"""From delivery to records: media type, length, JSON decoding, event records."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.intake import (
    MAX_DEPTH,
    check_content_type,
    check_declared_length,
    decode_json,
    split_array,
    to_new_events,
)
from api.providers.base import Normalised
from api.providers.post_purchase import PostPurchase
from api.providers.sendgrid import SendGrid
from api.providers.veriff import Veriff
from api.rejections import BodyTooLarge, MalformedBody, UnsupportedMediaType
from api.sendgrid_signature import new_key_pair

# --- content type -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        "  application/json  ",
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
        "application/vnd.shop.order+json",
    ],
)
def test_check_content_type_accepts_json_media_types(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "text/json",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json+xml",
        "text/plain; note=application/json",
    ],
)
def test_check_content_type_rejects_other_or_missing_media_types(
    content_type: str | None,
) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_content_type(content_type)


def test_check_content_type_names_what_it_got() -> None:
    with pytest.raises(UnsupportedMediaType, match="text/plain"):
        check_content_type("text/plain; charset=utf-8")
    with pytest.raises(UnsupportedMediaType, match="none"):
        check_content_type(None)


# --- declared length ----------------------------------------------------------------


@pytest.mark.parametrize("declared", [None, "", "0", "100", "1024", "abc", "-5", "1e9"])
def test_check_declared_length_lets_through_at_or_under_limit_or_unreadable(
    declared: str | None,
) -> None:
    check_declared_length(declared, 1024)


@pytest.mark.parametrize("declared", ["1025", "99999999999999999999", "0001025"])
def test_check_declared_length_refuses_a_declared_length_over_the_limit(declared: str) -> None:
    with pytest.raises(BodyTooLarge, match="1024"):
        check_declared_length(declared, 1024)


def test_check_declared_length_ignores_digit_like_characters_int_cannot_read() -> None:
    check_declared_length("\u00b2", 1024)


# --- decode_json --------------------------------------------------------------------


def test_decode_json_returns_the_value_and_compact_payload_text() -> None:
    parsed, payload = decode_json(b'{ "b": [1, 2.5, null],\n "a": "\xc3\xa4" }')
    assert parsed == {"b": [1, 2.5, None], "a": "ä"}
    assert payload == '{"b":[1,2.5,null],"a":"ä"}'.encode()


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"{'a': 1}",
        b'{"a": 1} trailing',
        b"NaN",
        b"undefined",
        b'{"a": 1,}',
        b"\xef\xbb\xbf{}",
        b'"\\x41"',
    ],
)
def test_decode_json_rejects_invalid_json(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="not valid JSON"):
        decode_json(body)


def test_decode_json_rejects_an_empty_body() -> None:
    with pytest.raises(MalformedBody, match="empty"):
        decode_json(b"")


@pytest.mark.parametrize(
    "body",
    [b'"\\ud800"', b'"\\udc00"', b'{"a": "\\ud83d x"}', b'["\\ud800\\u0041"]', b'{"\\udfff": 1}'],
)
def test_decode_json_rejects_lone_surrogate_escapes(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        decode_json(body)


def test_decode_json_accepts_a_proper_surrogate_pair() -> None:
    parsed, payload = decode_json(b'"\\ud83d\\ude00"')
    assert parsed == "\U0001f600"
    assert msgspec.json.decode(payload) == "\U0001f600"


@pytest.mark.parametrize("body", [b'"\xff"', b'{"a": "\xed\xa0\x80"}', b'"caf\xe9"'])
def test_decode_json_rejects_invalid_utf8_as_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        decode_json(body)


def nested(depth: int, leaf: bytes = b"") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def test_decode_json_accepts_arrays_nested_max_depth_deep() -> None:
    parsed, _ = decode_json(nested(MAX_DEPTH))
    assert isinstance(parsed, list)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200, 100_000])
def test_decode_json_rejects_nesting_deeper_than_max_depth(depth: int) -> None:
    with pytest.raises(MalformedBody, match="nested"):
        decode_json(nested(depth))


def test_decode_json_rejects_objects_nested_too_deeply() -> None:
    body = b'{"a":' * (MAX_DEPTH + 1) + b"{}" + b"}" * (MAX_DEPTH + 1)
    with pytest.raises(MalformedBody, match="nested"):
        decode_json(body)


def test_decode_json_depth_limit_counts_containers_not_scalars() -> None:
    # 64 nested arrays are accepted when the innermost is empty, but not when it
    # holds a number: the same nesting, judged differently.
    decode_json(nested(MAX_DEPTH, b"1"))


def test_decode_json_rejects_numbers_out_of_range() -> None:
    with pytest.raises(MalformedBody):
        decode_json(b"1e400")
    with pytest.raises(MalformedBody):
        decode_json(b"1" * 5000)


def test_decode_json_stores_nul_as_replacement_character_but_keeps_the_value() -> None:
    body = b'{"name": "a\\u0000b", "k\\u0000": ["\\u0000"], "n": 1}'
    parsed, payload = decode_json(body)
    assert parsed == {"name": "a\x00b", "k\x00": ["\x00"], "n": 1}
    assert b"\\u0000" not in payload
    assert msgspec.json.decode(payload) == {"name": "a\ufffdb", "k\ufffd": ["\ufffd"], "n": 1}


def test_decode_json_leaves_an_escaped_backslash_before_u0000_alone() -> None:
    # The text \u0000 (backslash, u, 0, 0, 0, 0) is not a NUL character.
    parsed, payload = decode_json(b'{"a": "\\\\u0000"}')
    assert parsed == {"a": "\\u0000"}
    assert msgspec.json.decode(payload) == {"a": "\\u0000"}


# --- round trip (hypothesis) --------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON kind all the way down (True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_decode_json_round_trips_every_encodable_value(value: Any) -> None:
    parsed, payload = decode_json(msgspec.json.encode(value))
    assert same(parsed, value)
    assert same(msgspec.json.decode(payload), without_nul(value))


# --- to_new_events ------------------------------------------------------------------


def test_to_new_events_builds_one_record_with_signature_headers_and_order() -> None:
    adapter = PostPurchase(["whsec_c2VjcmV0"], "HOOKLEDGER_POST_PURCHASE_SECRET")
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,abc",
        "authorization": "Bearer hidden",
        "user-agent": "shop/" + "x" * 300,
    }
    body = b'{"event":"order.created","orderId":"7"}'
    parsed, payload = decode_json(body)
    found = adapter.normalise(headers, parsed)
    [event] = to_new_events(adapter, found, payload, body, headers, "corr-1")
    assert (event.provider, event.event_id, event.stream, event.type) == (
        "post-purchase",
        "msg_1",
        "order-7",
        "order.created",
    )
    assert event.payload_json is payload
    assert event.raw is body
    assert event.metadata["correlation_id"] == "corr-1"
    assert event.metadata["scheme"] == "standard-webhooks"
    assert event.metadata["headers"] == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,abc",
    }
    assert event.metadata["order_id"] == "7"
    assert event.metadata["user_agent"] == ("shop/" + "x" * 300)[:200]


def test_to_new_events_leaves_out_order_id_and_user_agent_when_absent() -> None:
    adapter = Veriff(["secret"], "HOOKLEDGER_VERIFF_SECRET")
    body = b'{"id":"evt_1","status":"approved"}'
    parsed, payload = decode_json(body)
    [event] = to_new_events(
        adapter, adapter.normalise({}, parsed), payload, body, {"x-signature": "ab"}, None
    )
    assert event.metadata == {
        "correlation_id": None,
        "scheme": "hmac-sha256-hex",
        "headers": {"x-signature": "ab"},
    }


def test_to_new_events_encodes_each_payload_when_a_body_holds_several_events() -> None:
    adapter = Veriff(["secret"], "HOOKLEDGER_VERIFF_SECRET")
    found = [
        Normalised("a", "verification.approved", "1", "order-1", None, {"n": 1}),
        Normalised("b", "verification.declined", None, "veriff-b", None, {"n": 2}),
    ]
    events = to_new_events(adapter, found, b"{}", b"raw", {}, None)
    assert [e.payload_json for e in events] == [b'{"n":1}', b'{"n":2}']
    assert [e.raw for e in events] == [b"raw", b"raw"]
    assert "order_id" not in events[1].metadata
    assert events[0].metadata["order_id"] == "1"


# --- batch deliveries ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8,
)  # fmt: skip
spaces = st.sampled_from(["", " ", "\n", "\r\n", "\t "])


@settings(max_examples=80, deadline=None)
@given(values=st.lists(json_values, max_size=6), gaps=st.lists(spaces, min_size=8, max_size=8))
def test_split_array_finds_each_elements_exact_bytes_and_offset(
    values: list[Any], gaps: list[str]
) -> None:
    pieces = [msgspec.json.encode(v) for v in values]
    body = (gaps[0] + "[" + gaps[1]).encode()
    expected = []
    for index, piece in enumerate(pieces):
        if index:
            body += ("," + gaps[2 + index % 6]).encode()
        expected.append((len(body), piece))
        body += piece + gaps[7].encode()
    body += b"]\r\n"
    found = split_array(body)
    assert found == expected
    assert all(body[offset : offset + len(piece)] == piece for offset, piece in found)


@pytest.mark.parametrize("body", [b"{}", b"1", b"[1,", b"not json"])
def test_split_array_refuses_a_body_that_is_not_an_array(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        split_array(body)


def test_batch_delivery_is_recorded_whole_then_each_element_with_its_own_bytes() -> None:
    adapter = SendGrid([new_key_pair()[1]], "HOOKLEDGER_SENDGRID_PUBLIC_KEY")
    body = (
        b'[{"event":"delivered","sg_event_id":"a","order_id":"7","note":"\\u0000"},\r\n'
        b' {"event":"open","sg_event_id":"b"}]\r\n'
    )
    parsed, payload = decode_json(body)
    found = adapter.normalise({}, parsed)
    headers = {"x-twilio-email-event-webhook-timestamp": "1700000000"}
    delivery, first, second = to_new_events(adapter, found, payload, body, headers, "c-1")

    assert delivery.raw is body
    assert delivery.payload_json is payload
    assert delivery.type == "sendgrid.delivery"
    assert delivery.event_id.startswith("delivery:") and len(delivery.event_id) == 9 + 64
    assert delivery.stream == "sendgrid-delivery-" + delivery.event_id[9:]
    assert delivery.metadata["events"] == 2
    assert delivery.metadata["headers"] == headers

    assert (first.event_id, first.stream, first.type) == ("a", "order-7", "email.delivered")
    assert first.raw == body[1 : body.index(b"}") + 1]
    assert first.metadata["delivery"] == delivery.event_id
    assert body[first.metadata["offset"] :].startswith(first.raw)
    assert first.metadata["order_id"] == "7"
    assert msgspec.json.decode(first.payload_json)["note"] == "\ufffd"  # NUL kept out of jsonb
    assert second.raw == b'{"event":"open","sg_event_id":"b"}'
    assert body[second.metadata["offset"] :].startswith(second.raw)
    assert "order_id" not in second.metadata
