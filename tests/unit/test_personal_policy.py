"""The personal-data policy: which values are personal and how long each is
kept, checked against a naive reference that matches every concrete path of a
body against every pattern; its default file; its errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.json_paths import parse_path
from hookledger.samples import SAMPLES
from personal.policy import (
    ANCHORS,
    DEFAULT_POLICY_FILE,
    Finder,
    PersonalPolicyError,
    Retention,
    load_policy,
)
from tests.exporter.reference import glob_match

NAMES = ["a", "b", "person", "email", "0", "1"]
keys = st.sampled_from(NAMES)
bodies = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
patterns = st.lists(st.sampled_from([*NAMES, "*", "**"]), min_size=1, max_size=3).filter(
    lambda p: p[-1] != "**"
)
retentions = st.builds(Retention, st.sampled_from([timedelta(0), timedelta(days=7)]),
                       st.sampled_from(["recorded", "countdown_closed"]))  # fmt: skip


def strength(retention: Retention) -> tuple[Any, int]:
    """The documented order: the shorter keep first, then the one counted from
    the recording (it never ends later)."""
    return retention.keep, ANCHORS.index(retention.anchor)


def reference(value: Any, rules: list[tuple[tuple[str, ...], Retention]]) -> list[Any]:
    """Every concrete path a pattern matches (not descending into a match), with
    the strongest retention of the patterns that match it."""
    found: list[Any] = []

    def visit(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            items: list[tuple[Any, str, Any]] = [(k, k, v) for k, v in node.items()]
        elif isinstance(node, list):
            items = [(i, str(i), v) for i, v in enumerate(node)]
        else:
            return
        for key, name, child in items:
            names = (*(str(p) for p in path), name)
            matching = [r for p, r in rules if glob_match(p, names)]
            if matching:
                found.append(((*path, key), min(matching, key=strength)))
            else:
                visit(child, (*path, key))

    visit(value, ())
    return found


@given(bodies, st.lists(st.tuples(patterns, retentions), min_size=1, max_size=4))
def test_the_finder_finds_what_the_naive_reference_finds(
    body: Any, rules: list[tuple[list[str], Retention]]
) -> None:
    compiled = [(tuple(p), r) for p, r in rules]
    # One retention per path, the strongest (as PersonalPolicy merges rules).
    merged: dict[tuple[str, ...], Retention] = {}
    for path, retention in compiled:
        merged[path] = min(merged.get(path, retention), retention)
    found = Finder(sorted(merged.items())).find(body)
    assert sorted((f.path, f.retention) for f in found) == sorted(
        reference(body, list(merged.items())), key=lambda x: (x[0], x[1])
    )


def test_on_overlap_the_shorter_keep_wins_and_then_the_one_from_recording() -> None:
    week = Retention(timedelta(days=7), "countdown_closed")
    day = Retention(timedelta(days=1), "countdown_closed")
    day_from_recording = Retention(timedelta(days=1), "recorded")
    assert day.stronger_than(week) and day_from_recording.stronger_than(day)
    finder = Finder([(parse_path("**.email"), week), (parse_path("a.email"), day)])
    found = finder.find({"a": {"email": "x"}, "b": {"email": "y"}})
    assert {f.path: f.retention for f in found} == {("a", "email"): day, ("b", "email"): week}


def test_the_default_policy_finds_the_personal_data_of_the_built_in_providers() -> None:
    policy = load_policy()
    veriff = policy.find("veriff", "verification.approved",
                         SAMPLES["veriff"]["verification.approved"]("o-1"))  # fmt: skip
    assert ("verification", "person") in [f.path for f in veriff]
    order = policy.find("post-purchase", "order.created",
                        SAMPLES["post-purchase"]["order.created"]("o-1"))  # fmt: skip
    assert [f.path for f in order] == [("customerEmail",)]
    shopify = {"customer": {"first_name": "A"}, "billing_address": {}, "total_price": "1.00"}
    assert {f.path for f in policy.find("shopify", "order.created", shopify)} == {
        ("customer",),
        ("billing_address",),
    }
    stripe = {"data": {"object": {"billing_details": {"name": "A"}, "amount": 100}}}
    assert [f.path for f in policy.find("stripe", "charge.refunded", stripe)] == [
        ("data", "object", "billing_details")
    ]
    # What is not personal stays out: amounts, ids, statuses, order ids.
    assert policy.find("veriff", "verification.approved", {"verification": {"id": "s"}}) == []


BAD_POLICIES = {
    '[[rule]]\npersonal = ["a"]\nkeep = "7 days"\n': "whole number",
    '[[rule]]\npersonal = ["a.**"]\nkeep = "7d"\n': "cannot end with **",
    '[[rule]]\npersonal = ["a"]\nkeep = "7d"\nfrom = "later"\n': "from",
    '[[rule]]\npersonal = ["a"]\nkeep = "7d"\ndrop = ["b"]\n': "drop",
    "[[rule]\n": "not valid TOML",
}


def test_a_policy_that_cannot_be_used_is_refused_naming_the_file(tmp_path: Path) -> None:
    for n, (text, why) in enumerate(BAD_POLICIES.items()):
        source = tmp_path / f"policy-{n}.toml"
        source.write_text(text)
        with pytest.raises(PersonalPolicyError, match=re.escape(why)) as refused:
            load_policy(source)
        assert str(source) in str(refused.value)


def test_the_default_file_loads() -> None:
    assert load_policy(DEFAULT_POLICY_FILE).rules
