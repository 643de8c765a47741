"""Personal values found in a delivery's raw bytes: the spans hold exactly the
values the policy's finder finds in the decoded payload, in order; cutting them
out and joining them back gives the raw body byte for byte; with the values
gone, the skeleton reads as the payload with those values null."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.chain import join
from events.json_paths import parse_path
from personal.policy import Finder, Retention
from personal.spans import NotJson, cut, find_spans

KEEP = Retention(timedelta(days=7))
NAMES = ["a", "email", "person", "0", "é", 'q"', "\\b", "\u2028"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=4)
)
payloads = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=15,
)
patterns = st.lists(st.sampled_from([*NAMES, "*", "**"]), min_size=1, max_size=3).filter(
    lambda p: p[-1] != "**"
)
spacing = st.sampled_from([None, 0, 2])


def finder_of(paths: list[list[str]]) -> Finder:
    return Finder(sorted({tuple(p): KEEP for p in paths}.items()))


def at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def nulled(value: Any, paths: list[tuple[Any, ...]]) -> Any:
    value = json.loads(json.dumps(value))
    for path in paths:
        at(value, path[:-1])[path[-1]] = None
    return value


@given(payloads, st.lists(patterns, min_size=1, max_size=3), spacing, st.booleans())
def test_the_spans_hold_what_the_finder_finds_and_cut_and_join_give_the_raw_body(
    payload: Any, paths: list[list[str]], indent: int | None, ascii_only: bool
) -> None:
    raw = json.dumps(payload, indent=indent, ensure_ascii=ascii_only).encode()
    finder = finder_of(paths)
    found = finder.find(json.loads(raw))
    spans = find_spans(raw, finder)
    assert [s.path for s in spans] == [f.path for f in found]
    assert [json.loads(raw[s.start : s.end]) for s in spans] == [at(payload, f.path) for f in found]
    skeleton, holes, values = cut(raw, spans)
    assert join(skeleton, holes, values) == raw
    gone = join(skeleton, holes, [None] * len(values))
    assert json.loads(gone) == nulled(payload, [f.path for f in found])


def test_the_skeleton_holds_none_of_the_personal_bytes() -> None:
    raw = b'{"orderId": "o-1", "customerEmail" : "ann@example.com", "total": 5}'
    finder = Finder([(parse_path("**.customerEmail"), KEEP)])
    skeleton, holes, values = cut(raw, find_spans(raw, finder))
    assert values == [b'"ann@example.com"'] and b"ann" not in skeleton
    assert json.loads(join(skeleton, holes, [None])) == {
        "orderId": "o-1", "customerEmail": None, "total": 5
    }  # fmt: skip


def test_a_key_twice_in_one_object_is_personal_in_both_places() -> None:
    raw = b'{"email": "a@x", "email": "b@x"}'
    spans = find_spans(raw, Finder([(parse_path("email"), KEEP)]))
    assert [raw[s.start : s.end] for s in spans] == [b'"a@x"', b'"b@x"']


def test_a_deeply_nested_body_is_scanned_without_recursion() -> None:
    depth = 20_000
    raw = b"[" * depth + b'{"email": "deep@x"}' + b"]" * depth
    spans = find_spans(raw, Finder([(parse_path("**.email"), KEEP)]))
    assert [raw[s.start : s.end] for s in spans] == [b'"deep@x"']


@pytest.mark.parametrize("raw", [b'{"email": "x"', b'{"email" "x"}', b'{"a": 1} 2', b""])
def test_what_is_not_one_json_document_is_refused(raw: bytes) -> None:
    with pytest.raises(NotJson):
        find_spans(raw, Finder([(parse_path("**.email"), KEEP)]))
