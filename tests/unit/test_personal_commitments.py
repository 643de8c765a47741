"""A delivery split for the ledger: each personal value is proven by its salt
and committed to without it; nothing kept for ever holds a personal value's
bytes; a changed value, salt or commitment does not hold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.chain import join
from events.json_paths import parse_path
from personal.commitments import Entry, canonical, holds, split
from personal.policy import Finder, Retention

FINDER = Finder([(parse_path("**.email"), Retention(timedelta(days=90), "countdown_closed")),
                 (parse_path("**.person"), Retention(timedelta(days=7)))])  # fmt: skip
secrets_text = st.text(st.characters(codec="utf-8", exclude_characters='"\\'), min_size=8,
                       max_size=20)  # fmt: skip


def body(email: str, person: str, extra: Any) -> bytes:
    document = {"order": {"email": email, "total": 5}, "verification": {"person": {"name": person}},
                "extra": extra}  # fmt: skip
    return json.dumps(document).encode()


@given(secrets_text, secrets_text, st.integers() | st.text(max_size=5))
def test_each_value_holds_with_its_salt_and_none_is_kept_for_ever(
    email: str, person: str, extra: Any
) -> None:
    raw = body(email, person, extra)
    parts = split(raw, FINDER)
    assert [e.path for e in parts.entries] == [("order", "email"), ("verification", "person")]
    for entry, salt, value in zip(parts.entries, parts.salts, parts.values, strict=True):
        assert holds(entry, salt, value)
    kept = parts.skeleton + canonical(parts.entries).encode()
    for secret in (email, person):
        assert secret.encode() not in kept
        assert json.dumps(secret)[1:-1].encode() not in kept
    assert join(parts.skeleton, [e.at for e in parts.entries], list(parts.values)) == raw


@given(secrets_text, st.integers(0, 7), st.integers(0, 255))
def test_a_changed_value_salt_or_commitment_does_not_hold(
    email: str, bit: int, byte_index: int
) -> None:
    parts = split(body(email, "P. Erson", 1), FINDER)
    entry, salt, value = parts.entries[0], parts.salts[0], parts.values[0]

    def flipped(data: bytes) -> bytes:
        i = byte_index % len(data)
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]

    assert not holds(entry, salt, flipped(value))
    assert not holds(entry, flipped(salt), value)
    forged = Entry(entry.path, entry.at, flipped(entry.commitment.encode()).decode("latin-1"),
                   entry.keep_seconds, entry.anchor)  # fmt: skip
    assert not holds(forged, salt, value)


def test_the_same_value_twice_gets_two_commitments_that_confirm_nothing_alike() -> None:
    one, two = split(body("a@x", "P", 1), FINDER), split(body("a@x", "P", 1), FINDER)
    assert one.entries[0].commitment != two.entries[0].commitment  # fresh salts


def test_the_canonical_text_is_sorted_compact_and_ascii() -> None:
    entry = Entry(("order", 0, "é"), 12, "ab" * 32, 604800, "recorded")
    assert canonical([entry]) == (
        '[{"anchor":"recorded","at":12,"commitment":"' + "ab" * 32
        + '","keep_seconds":604800,"path":["order",0,"\\u00e9"]}]'
    )  # fmt: skip


def test_a_body_with_nothing_personal_is_kept_whole() -> None:
    raw = b'{"orderId": "o-1", "total": 5}'
    parts = split(raw, FINDER)
    assert parts.skeleton == raw and parts.entries == () and split(raw, None).skeleton == raw
