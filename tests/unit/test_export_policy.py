"""The personal data policy: what it drops and hashes, checked against a naive
reference that matches every concrete path of a body against every pattern."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter.policy import Policy, PolicyError, Redactor, Rule, load_rules, parse_path
from hookledger.samples import SAMPLES
from tests.exporter.reference import concrete_paths, glob_match, hmac_of, reference

KEY = b"k1"

# -- strategies ------------------------------------------------------------------

NAMES = ["a", "b", "person", "email", "0", "1", "é", 'q"uote', "back\\slash"]
keys = st.sampled_from(NAMES)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
bodies = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
patterns = st.lists(st.sampled_from([*NAMES, "*", "**"]), min_size=1, max_size=4).filter(
    lambda segments: segments[-1] != "**"
)


def redactor(drop: list[list[str]], hash_: list[list[str]], key: bytes = KEY) -> Redactor:
    return Redactor([tuple(p) for p in drop], [tuple(p) for p in hash_], key)


@given(body=bodies, drop=st.lists(patterns, max_size=2), hash_=st.lists(patterns, max_size=2))
def test_policy_does_exactly_what_the_naive_reference_does(
    body: Any, drop: list[list[str]], hash_: list[list[str]]
) -> None:
    expected = reference(body, [tuple(p) for p in drop], [tuple(p) for p in hash_], KEY)
    assert redactor(drop, hash_).apply(copy.deepcopy(body)) == expected


@given(body=bodies, drop=patterns.filter(lambda p: not any(s.isdigit() for s in p)))
def test_a_dropped_path_never_appears_in_the_output(body: Any, drop: list[str]) -> None:
    output = redactor([drop], []).apply(copy.deepcopy(body))
    assert not any(glob_match(tuple(drop), path) for path in concrete_paths(output))


@given(
    body=bodies,
    drop=st.lists(patterns, max_size=2),
    hash_=st.lists(patterns, max_size=2),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 2]),
)
@example(body={"x": {"é": 1}}, drop=[["**", "é"]], hash_=[], ascii_only=True, indent=None)
@example(body={"a": "\n", "email": 1}, drop=[], hash_=[["email"]], ascii_only=False, indent=None)
def test_text_gives_the_same_result_however_the_json_is_spelled(
    body: Any, drop: list[list[str]], hash_: list[list[str]], ascii_only: bool, indent: int | None
) -> None:
    # Escapes (\u00e9, \") must not hide a key from the quick text check.
    text = json.dumps(body, ensure_ascii=ascii_only, indent=indent)
    expected = reference(body, [tuple(p) for p in drop], [tuple(p) for p in hash_], KEY)
    assert json.loads(redactor(drop, hash_).apply_text(text)) == expected


@given(value=scalars | st.dictionaries(keys, scalars, max_size=3), other=st.binary(min_size=1))
def test_hashing_is_deterministic_per_key_and_differs_between_keys(
    value: Any, other: bytes
) -> None:
    first, again = redactor([], [["x"]]), redactor([], [["x"]])
    assert first.hash(value) == again.hash(value) == hmac_of(value, KEY)
    if value is not None and other != KEY:
        assert redactor([], [["x"]], other).hash(value) != first.hash(value)


# -- the default policy -----------------------------------------------------------


def default_policy() -> Policy:
    return Policy(load_rules(), KEY)


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


def test_default_policy_drops_veriffs_person_and_document_wherever_they_are() -> None:
    body = {
        "status": "success",
        "verification": {
            "id": "s-1",
            "status": "approved",
            "person": {"firstName": "SAMPLE", "idNumber": "39001010000"},
            "document": {"number": "K0000000", "country": "EE"},
            "additional": [{"person": {"lastName": "PERSON"}}],
        },
        "person": {"dateOfBirth": "1990-01-01"},
    }
    text = default_policy().apply_text("veriff", "verification.approved", json.dumps(body))
    exported = json.loads(text)
    assert {"person", "document"}.isdisjoint(keys_anywhere(exported))
    assert exported["verification"] == {"id": "s-1", "status": "approved", "additional": [{}]}
    for secret in ("SAMPLE", "PERSON", "39001010000", "K0000000", "1990-01-01"):
        assert secret not in text


def test_default_policy_hashes_customer_email_for_every_provider_and_keeps_the_rest() -> None:
    policy = default_policy()
    body = {"orderId": "1", "customerEmail": "buyer@example.com", "orderTotal": 59.9}
    for provider in ("post-purchase", "shopify", "veriff"):
        exported = json.loads(policy.apply_text(provider, "order.created", json.dumps(body)))
        assert exported == {**body, "customerEmail": hmac_of("buyer@example.com", KEY)}


def test_default_policy_leaves_other_providers_person_fields_alone() -> None:
    body = json.dumps({"person": "a shop's own field"})
    assert default_policy().apply_text("post-purchase", "order.created", body) == body


@pytest.mark.parametrize(
    ("provider", "sample"),
    [(provider, name) for provider, samples in SAMPLES.items() for name in samples],
)
def test_default_policy_on_every_provider_sample_removes_what_it_should(
    provider: str, sample: str
) -> None:
    body = SAMPLES[provider][sample]("order-77")
    rules = [r for r in load_rules() if r.matches(provider, sample)]
    drop = [parse_path(p) for r in rules for p in r.drop]
    hash_ = [parse_path(p) for r in rules for p in r.hash]
    exported = json.loads(default_policy().apply_text(provider, sample, json.dumps(body)))
    assert exported == reference(body, drop, hash_, KEY)
    assert not any(glob_match(p, path) for p in drop for path in concrete_paths(exported))


# -- paths, rules and files ----------------------------------------------------------


def test_paths_select_keys_elements_and_depths_and_a_drop_beats_a_hash() -> None:
    body = {
        "items": [{"email": "a@x", "sku": 1}, {"email": "b@x", "sku": 2}],
        "deep": {"er": {"email": None, "ssn": "1"}},
        "ssn": {"nested": True},
    }
    out = redactor([["items", "1"], ["**", "ssn"]], [["items", "*", "email"], ["**", "email"]])
    result = out.apply(copy.deepcopy(body))
    assert result == {
        "items": [{"email": hmac_of("a@x", KEY), "sku": 1}],
        "deep": {"er": {"email": None}},
    }
    both = redactor([["a"]], [["a"]]).apply({"a": 1, "b": 2})
    assert both == {"b": 2}


def test_a_hashed_object_is_hashed_whole_whatever_its_key_order() -> None:
    hashing = redactor([], [["customer"]])
    first = hashing.apply({"customer": {"name": "x", "email": "y"}})
    second = hashing.apply({"customer": {"email": "y", "name": "x"}})
    assert first == second
    assert len(first["customer"]) == 64


def test_rules_apply_to_their_provider_and_types_only() -> None:
    policy = Policy([Rule(provider="shop*", types=["order.*"], drop=["secret"])], KEY)
    body = json.dumps({"secret": 1})
    assert policy.apply_text("shopify", "order.created", body) == "{}"
    assert policy.apply_text("shopify", "refund.created", body) == body
    assert policy.apply_text("veriff", "order.created", body) == body


def test_numbers_beyond_64_bits_survive_a_redaction_exactly() -> None:
    text = '{"email": "x", "big": 123456789012345678901234567890, "tiny": 1e-400}'
    exported = redactor([], [["email"]]).apply_text(text)
    assert '"big":123456789012345678901234567890' in exported


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ('[[rule]]\nprovider = "veriff"\ndrops = ["person"]\n', "drops"),
        ('[[rule]]\ndrop = ["person.**"]\n', "cannot end with **"),
        ('[[rule]]\ndrop = ["a..b"]\n', "empty key"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_a_policy_file_with_a_mistake_is_refused_and_named(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(content)
    with pytest.raises(PolicyError, match=re.escape(complaint)) as raised:
        load_rules(path)
    assert str(path) in str(raised.value)


def test_a_policy_file_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[rule]]\nprovider = "veriff"\nhash = ["verification.id"]\n')
    policy = Policy(load_rules(path), KEY)
    body = {"verification": {"id": "s", "person": {"a": 1}}, "customerEmail": "e"}
    exported = json.loads(policy.apply_text("veriff", "verification.approved", json.dumps(body)))
    assert exported == {
        "verification": {"id": hmac_of("s", KEY), "person": {"a": 1}},
        "customerEmail": "e",
    }
