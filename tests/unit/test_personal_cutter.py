"""The cutter: whatever shape a body has (nesting, repeated keys, U+0000 in
keys, any spacing), the skeleton and the held values join back to the exact
bytes received, the stored payload has null exactly where the values were, and
each held value is the one its commitment covers."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.chain import commitment, join, without_nul
from events.model import NewEvent
from personal.cutter import PersonalCutter
from personal.policy import load_policy
from personal.spans import find_spans, quick_spans

KEY = b"k" * 32
CUTTER = PersonalCutter(load_policy(), KEY)
KEYS = st.sampled_from(["email", "person", "customerEmail", "name", "id", "a\x00b", "ипя", "x"])
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.text(max_size=20), FLOATS
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)
BODIES = st.dictionaries(KEYS, VALUES, min_size=1, max_size=5)


def event(raw: bytes, payload_json: bytes, provider: str = "veriff") -> NewEvent:
    return NewEvent(provider=provider, event_id="e", stream="order-1",
                    type="verification.approved", payload_json=payload_json, raw=raw)  # fmt: skip


def nulled(payload: Any, paths: list[list[Any]]) -> Any:
    for path in paths:
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = None
    return payload


@settings(max_examples=300, deadline=None)
@given(body=BODIES, indent=st.sampled_from([None, 0, 2]))
def test_a_cut_body_joins_back_to_its_exact_bytes(body: dict[str, Any], indent: int | None) -> None:
    raw = json.dumps(body, indent=indent, ensure_ascii=indent is None).encode()
    payload_json = msgspec.json.encode(without_nul(body))
    cut = CUTTER.cut(event(raw, payload_json))
    if cut is None:
        return
    values = [v["value"] for v in cut.values]
    assert join(cut.raw, [e["at"] for e in cut.entries], values) == raw
    assert len(cut.raw) == len(raw) - sum(map(len, values))  # every cut value's bytes left
    for entry, row in zip(cut.entries, cut.values, strict=True):
        salt, value = row["salt"], row["value"]
        assert commitment(salt, value) == entry["commitment"]
    stored = msgspec.json.decode(cut.payload_json)
    assert stored == nulled(without_nul(json.loads(raw)), [e["path"] for e in cut.entries])


def test_nothing_personal_is_not_cut() -> None:
    raw = b'{"id": "evt_1", "status": "approved"}'
    assert CUTTER.cut(event(raw, raw)) is None
    assert CUTTER.cut(event(raw, raw, provider="no-rule-for-it")) is None


def test_an_address_inside_a_personal_object_is_found_by_its_keyed_hash() -> None:
    raw = b'{"customer": {"first_name": "Ada", "email": "Ada@Example.com"}, "id": 7}'
    cut = CUTTER.cut(NewEvent(provider="shopify", event_id="1", stream="order-7",
                              type="order.created", payload_json=raw, raw=raw))  # fmt: skip
    assert cut is not None and len(cut.values) == 1
    assert cut.values[0]["lookup"] is not None
    assert b"Ada" not in cut.raw and b"Ada" not in cut.payload_json


def test_extreme_values_are_cut_whole() -> None:
    huge = "x" * 100_000
    raw = json.dumps({"email": huge, "person": {"dob": "9999-12-31"}, "n": 1e300}).encode()
    cut = CUTTER.cut(event(raw, raw))
    assert cut is not None
    assert huge.encode() not in cut.raw and b"9999-12-31" not in cut.raw
    assert json.loads(cut.payload_json)["n"] == 1e300


@settings(max_examples=300, deadline=None)
@given(body=BODIES, indent=st.sampled_from([None, 0, 2]), noise=st.sampled_from(["", "email"]))
def test_the_quick_search_finds_what_the_full_scan_finds_or_declines(
    body: dict[str, Any], indent: int | None, noise: str
) -> None:
    # A string value that looks like a key, and repeated keys, must not fool it.
    raw = json.dumps({**body, "note": f'"{noise}": "x"'}, indent=indent).encode()
    if noise:
        raw = raw[:-1] + b', "email": "again@example.com"}'
    finder = load_policy().finder("veriff", "verification.approved")
    assert finder is not None
    found = finder.find(msgspec.json.decode(raw))
    quick = quick_spans(raw, finder, found)
    if quick is not None:
        assert [(s.start, s.end, s.path) for s in quick] == [
            (s.start, s.end, s.path) for s in find_spans(raw, finder)
        ]


def test_a_payload_that_is_not_the_whole_raw_body_keeps_nothing_personal() -> None:
    raw = b'{"wrap": {"email": "a@example.com"}, "id": 1}'
    cut = CUTTER.cut(event(raw, b'{"email":"a@example.com","id":1}'))
    assert cut is not None
    assert b"a@example.com" not in cut.payload_json and b"a@example.com" not in cut.raw
