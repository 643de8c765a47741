"""The per-stream hash chain, checked without a database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events.chain import (
    GENESIS,
    canonical_entries,
    event_hash,
    format_time,
    payload_matches,
    recorded_hash,
    verify_stream,
)
from events.errors import ChainBroken
from events.model import RecordedEvent

EXAMPLES = settings(max_examples=50, deadline=None)

HASHED_FIELDS = (
    "event_id",
    "metadata",
    "payload",
    "occurred_at",
    "prev_hash",
    "provider",
    "raw",
    "recorded_at",
    "stream",
    "stream_version",
    "type",
)

moments = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
)
names = st.text(min_size=1, max_size=20)
MICRO = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)


class Fields(msgspec.Struct, frozen=True):
    """What an appended event brings to the chain; the rest is derived."""

    provider: str
    event_id: str
    type: str
    occurred_at: datetime | None
    recorded_at: datetime
    raw: bytes
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


# JSON values as providers send them; the payload is what raw parses to.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
exact_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

fields = st.builds(
    Fields,
    provider=st.sampled_from(["veriff", "post-purchase", "pröv"]),
    event_id=names,
    type=names,
    occurred_at=st.none() | moments,
    recorded_at=moments,
    raw=st.builds(lambda v: json.dumps(v).encode(), json_values),
    metadata=st.dictionaries(st.text(max_size=8), exact_values, max_size=3),
)


def as_stored(value: Any) -> Any:
    """A parsed body as jsonb holds it: NUL characters become U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {as_stored(k): as_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_stored(v) for v in value]
    return value


def build_chain(stream: str, items: list[Fields], rule: int = 2) -> list[RecordedEvent]:
    """Events as the appender records them: versions 1..n, each hashed onto the last."""
    chain: list[RecordedEvent] = []
    prev = GENESIS
    for version, item in enumerate(items, start=1):
        digest = event_hash(
            prev_hash=prev,
            stream=stream,
            stream_version=version,
            provider=item.provider,
            event_id=item.event_id,
            type=item.type,
            occurred_at=item.occurred_at,
            recorded_at=item.recorded_at,
            raw_sha256=hashlib.sha256(item.raw).hexdigest(),
            metadata=item.metadata,
            rule=rule,
        )
        chain.append(
            RecordedEvent(
                position=version * 10,
                provider=item.provider,
                event_id=item.event_id,
                stream=stream,
                stream_version=version,
                type=item.type,
                occurred_at=item.occurred_at,
                recorded_at=item.recorded_at,
                payload=as_stored(json.loads(item.raw)),
                raw=item.raw,
                metadata=item.metadata,
                prev_hash=prev,
                hash=digest,
                hash_rule=rule,
            )
        )
        prev = digest
    return chain


chains = st.builds(build_chain, names, st.lists(fields, min_size=1, max_size=6))
rule_1_chains = st.builds(build_chain, names, st.lists(fields, min_size=1, max_size=6), st.just(1))
long_chains = st.builds(build_chain, names, st.lists(fields, min_size=2, max_size=6))


def altered(event: RecordedEvent, field: str, data: st.DataObject) -> RecordedEvent:
    """The event with one hashed field changed to a different value."""
    old = getattr(event, field)
    new: Any
    if field == "occurred_at":
        choices = [event.recorded_at] if old is None else [None, old + MICRO, old - SECOND]
        new = data.draw(st.sampled_from(choices))
    elif field == "recorded_at":
        new = old + data.draw(st.sampled_from([MICRO, -SECOND, timedelta(days=-1)]))
    elif field == "stream_version":
        new = data.draw(st.integers(min_value=0, max_value=1000).filter(lambda v: v != old))
    elif field == "raw":
        new = data.draw(st.binary(max_size=40).filter(lambda v: v != old))
    elif field == "payload":
        new = data.draw(json_values.filter(lambda v: not payload_matches(event.raw, v)))
    elif field == "metadata":
        new = data.draw(
            st.dictionaries(st.text(max_size=8), exact_values, max_size=3).filter(
                lambda v: v != old
            )
        )
    elif field == "prev_hash":
        new = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    else:
        new = data.draw(st.text(max_size=20).filter(lambda v: v != old))
    assume(new != old)
    return msgspec.structs.replace(event, **{field: new})


# --- the intact chain ---------------------------------------------------------------


@EXAMPLES
@given(chain=chains)
def test_verify_stream_accepts_an_intact_chain_and_counts_it(chain: list[RecordedEvent]) -> None:
    assert verify_stream(chain) == len(chain)
    assert chain[0].prev_hash == GENESIS
    assert all(len(event.hash) == 64 for event in chain)


def test_verify_stream_accepts_an_empty_stream() -> None:
    assert verify_stream([]) == 0


@EXAMPLES
@given(chain=chains)
def test_verify_stream_ignores_only_the_position(chain: list[RecordedEvent]) -> None:
    # The position is the ledger's order, covered by the Merkle tree, not the chain.
    changed = [msgspec.structs.replace(e, position=-1) for e in chain]
    assert verify_stream(changed) == len(chain)


@EXAMPLES
@given(chain=rule_1_chains)
def test_events_hashed_under_rule_1_keep_verifying(chain: list[RecordedEvent]) -> None:
    assert verify_stream(chain) == len(chain)


@EXAMPLES
@given(chain=chains, index=st.integers(min_value=0))
def test_an_event_relabelled_from_rule_2_to_rule_1_is_refused(
    chain: list[RecordedEvent], index: int
) -> None:
    index %= len(chain)
    tampered = list(chain)
    tampered[index] = msgspec.structs.replace(chain[index], hash_rule=1)
    with pytest.raises(ChainBroken) as caught:
        verify_stream(tampered)
    assert caught.value.version == index + 1


def test_a_rule_1_event_after_a_rule_2_event_is_refused() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    items = [Fields("veriff", f"id-{n}", "t", None, moment, b"{}") for n in range(2)]
    first = build_chain("s", items[:1])[0]
    second = event_hash(
        prev_hash=first.hash, stream="s", stream_version=2, provider="veriff", event_id="id-1",
        type="t", occurred_at=None, recorded_at=moment,
        raw_sha256=hashlib.sha256(b"{}").hexdigest(), rule=1,
    )  # fmt: skip
    later = msgspec.structs.replace(
        first, stream_version=2, event_id="id-1", prev_hash=first.hash, hash=second, hash_rule=1
    )
    with pytest.raises(ChainBroken, match="rule 1 follows rule 2"):
        verify_stream([first, later])


# --- tampering ----------------------------------------------------------------------


@EXAMPLES
@given(
    chain=chains,
    index=st.integers(min_value=0),
    field=st.sampled_from((*HASHED_FIELDS, "hash")),
    data=st.data(),
)
def test_verify_stream_rejects_any_change_of_a_hashed_field(
    chain: list[RecordedEvent], index: int, field: str, data: st.DataObject
) -> None:
    index %= len(chain)
    tampered = list(chain)
    tampered[index] = altered(chain[index], field, data)
    with pytest.raises(ChainBroken) as caught:
        verify_stream(tampered)
    assert caught.value.version == index + 1


@EXAMPLES
@given(chain=long_chains, index=st.integers(min_value=0))
def test_verify_stream_rejects_removal_of_any_event_but_the_last(
    chain: list[RecordedEvent], index: int
) -> None:
    index %= len(chain) - 1
    with pytest.raises(ChainBroken) as caught:
        verify_stream(chain[:index] + chain[index + 1 :])
    assert caught.value.version == index + 1
    assert caught.value.reason == f"found version {index + 2}"
    assert caught.value.stream == chain[0].stream


@EXAMPLES
@given(chain=chains)
def test_verify_stream_cannot_see_a_truncated_tail_so_callers_compare_the_count(
    chain: list[RecordedEvent],
) -> None:
    # A chain has no forward links: dropping the newest events leaves a valid,
    # shorter chain. The store compares the count with the stream's recorded head.
    assert verify_stream(chain[:-1]) == len(chain) - 1


def swap_two(
    chain: list[RecordedEvent], data: st.DataObject
) -> tuple[int, int, list[RecordedEvent]]:
    """The chain with two events (indexes i < j) swapped."""
    i = data.draw(st.integers(0, len(chain) - 2))
    j = data.draw(st.integers(i + 1, len(chain) - 1))
    swapped = list(chain)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return i, j, swapped


@EXAMPLES
@given(chain=long_chains, data=st.data())
def test_verify_stream_rejects_swapping_two_events(
    chain: list[RecordedEvent], data: st.DataObject
) -> None:
    i, j, swapped = swap_two(chain, data)
    with pytest.raises(ChainBroken) as caught:
        verify_stream(swapped)
    assert caught.value.version == i + 1
    assert caught.value.reason == f"found version {j + 1}"


@EXAMPLES
@given(chain=long_chains, data=st.data())
def test_verify_stream_rejects_swapping_two_events_even_with_versions_renumbered(
    chain: list[RecordedEvent], data: st.DataObject
) -> None:
    i, _, swapped = swap_two(chain, data)
    renumbered = [
        msgspec.structs.replace(event, stream_version=version)
        for version, event in enumerate(swapped, start=1)
    ]
    with pytest.raises(ChainBroken) as caught:
        verify_stream(renumbered)
    assert caught.value.version == i + 1


@EXAMPLES
@given(chain=long_chains, data=st.data())
def test_verify_stream_rejects_any_reordering(
    chain: list[RecordedEvent], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(chain))))
    assume(order != list(range(len(chain))))
    first_moved = next(k for k, v in enumerate(order) if k != v)
    with pytest.raises(ChainBroken) as caught:
        verify_stream([chain[k] for k in order])
    assert caught.value.version == first_moved + 1


@EXAMPLES
@given(chain=long_chains, other=chains)
def test_verify_stream_rejects_another_streams_genesis_spliced_in(
    chain: list[RecordedEvent], other: list[RecordedEvent]
) -> None:
    # Another stream's first event is a valid genesis on its own; the break shows
    # at version 2, whose prev_hash no longer matches.
    assume(other[0].hash != chain[0].hash)
    with pytest.raises(ChainBroken) as caught:
        verify_stream([other[0], *chain[1:]])
    assert caught.value.version == 2


@EXAMPLES
@given(chain=chains, other=chains)
def test_verify_stream_rejects_an_event_appended_from_another_stream(
    chain: list[RecordedEvent], other: list[RecordedEvent]
) -> None:
    with pytest.raises(ChainBroken) as caught:
        verify_stream([*chain, other[0]])
    assert caught.value.version == len(chain) + 1


# --- the documented rule, recomputed independently ----------------------------------


def auditor_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, written out by hand."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def auditor_hash(event: RecordedEvent) -> str:
    """The auditor's rule from events/chain.py, without calling hookledger's hashing."""
    doc: dict[str, Any] = {
        "event_id": event.event_id,
        "occurred_at": None if event.occurred_at is None else auditor_time(event.occurred_at),
        "prev_hash": event.prev_hash,
        "provider": event.provider,
        "raw_sha256": hashlib.sha256(event.raw).hexdigest(),
        "recorded_at": auditor_time(event.recorded_at),
        "stream": event.stream,
        "stream_version": event.stream_version,
        "type": event.type,
    }
    if event.hash_rule == 2:
        doc["metadata"] = event.metadata
        doc["rule"] = 2
    return hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


@EXAMPLES
@given(chain=chains | rule_1_chains)
def test_auditor_rule_reproduces_every_recorded_hash(chain: list[RecordedEvent]) -> None:
    prev = GENESIS
    for event in chain:
        assert event.prev_hash == prev
        assert auditor_hash(event) == event.hash
        prev = event.hash


def test_rule_2_matches_a_pinned_hash() -> None:
    digest = event_hash(
        prev_hash=GENESIS,
        stream="order-42",
        stream_version=1,
        provider="post-purchase",
        event_id="msg_1",
        type="order.created",
        occurred_at=None,
        recorded_at=datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC),
        raw_sha256=hashlib.sha256(b"{}").hexdigest(),
        metadata={"scheme": "hmac", "headers": {"x-sig": "ä"}, "offset": 3},
        rule=2,
    )
    doc = (
        '{"event_id":"msg_1","metadata":{"headers":{"x-sig":"\\u00e4"},"offset":3,'
        '"scheme":"hmac"},"occurred_at":null,"prev_hash":"' + GENESIS + '",'
        '"provider":"post-purchase","raw_sha256":"'
        + hashlib.sha256(b"{}").hexdigest()
        + '","recorded_at":"2024-05-01T12:30:00.123456Z","rule":2,"stream":"order-42",'
        '"stream_version":1,"type":"order.created"}'
    )
    assert digest == hashlib.sha256(doc.encode()).hexdigest()


def test_rule_3_covers_the_cut_values_entries_beside_rule_2s_keys() -> None:
    entries = [{"anchor": "recorded", "at": 12, "commitment": "ab" * 32,
                "keep_seconds": 60, "path": ["customer", "émail", 0]}]  # fmt: skip
    digest = event_hash(
        prev_hash=GENESIS,
        stream="order-42",
        stream_version=1,
        provider="post-purchase",
        event_id="msg_1",
        type="order.created",
        occurred_at=None,
        recorded_at=datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC),
        raw_sha256=hashlib.sha256(b"{}").hexdigest(),
        metadata={"scheme": "hmac"},
        personal=canonical_entries(entries),
    )
    documented = {
        "event_id": "msg_1", "metadata": {"scheme": "hmac"}, "occurred_at": None,
        "personal": entries, "prev_hash": GENESIS, "provider": "post-purchase",
        "raw_sha256": hashlib.sha256(b"{}").hexdigest(),
        "recorded_at": "2024-05-01T12:30:00.123456Z", "rule": 3, "stream": "order-42",
        "stream_version": 1, "type": "order.created",
    }  # fmt: skip
    text = json.dumps(documented, sort_keys=True, separators=(",", ":"))
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    changed = [{**entries[0], "commitment": "cd" * 32}]
    assert digest != event_hash(
        prev_hash=GENESIS, stream="order-42", stream_version=1, provider="post-purchase",
        event_id="msg_1", type="order.created", occurred_at=None,
        recorded_at=datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC),
        raw_sha256=hashlib.sha256(b"{}").hexdigest(), metadata={"scheme": "hmac"},
        personal=canonical_entries(changed),
    )  # fmt: skip


def test_metadata_with_a_float_is_refused_at_append_time() -> None:
    # A float might come back from jsonb spelt differently (1e16 as 10000000000000000).
    with pytest.raises(ValueError, match="float"):
        event_hash(
            prev_hash=GENESIS, stream="s", stream_version=1, provider="p", event_id="e",
            type="t", occurred_at=None, recorded_at=datetime(2024, 1, 1, tzinfo=UTC),
            raw_sha256="0" * 64, metadata={"n": 1e16},
        )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "payload"),
    [
        (b'{"a":1E2}', {"a": 100.0}),
        (b'{"a":1e300}', {"a": 10**300}),  # jsonb spells a large float as digits
        (b'{"a":1.5e-7}', {"a": 1.5e-7}),
        (b'{"a":123456789012345678901234567890}', {"a": 123456789012345678901234567890}),
        (b'{"a":"x\\u0000y"}', {"a": "x\ufffdy"}),
        (b'{"a":1,"a":2}', {"a": 2}),
        (b"[0.1000000000000000055511151231257827]", [0.1]),
    ],
)
def test_a_payload_as_the_intake_stores_it_matches_its_raw(raw: bytes, payload: Any) -> None:
    assert payload_matches(raw, payload)


@pytest.mark.parametrize(
    ("raw", "payload"),
    [
        (b'{"status":"approved"}', {"status": "forged"}),
        (b'{"a":1}', {"a": True}),
        (b'{"a":true}', {"a": 1}),
        (b'{"a":1}', {"a": 1.0}),
        (b'{"a":1}', {"a": 1, "b": 2}),
        (b'{"a":[1,2]}', {"a": [2, 1]}),
        (b'{"a":null}', {"a": "null"}),
        (b"not json", {}),
        (b'{"a":NaN}', {"a": None}),
    ],
)
def test_a_payload_that_is_not_its_raw_does_not_match(raw: bytes, payload: Any) -> None:
    assert not payload_matches(raw, payload)


def test_auditor_rule_matches_a_pinned_hash() -> None:
    # A fixed vector: if the hashed document ever changes, old ledgers stop verifying.
    digest = event_hash(
        prev_hash=GENESIS,
        stream="order-42",
        stream_version=1,
        provider="post-purchase",
        event_id="msg_1",
        type="order.created",
        occurred_at=None,
        recorded_at=datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC),
        raw_sha256=hashlib.sha256(b"{}").hexdigest(),
        rule=1,
    )
    doc = (
        '{"event_id":"msg_1","occurred_at":null,"prev_hash":"' + GENESIS + '",'
        '"provider":"post-purchase","raw_sha256":"'
        + hashlib.sha256(b"{}").hexdigest()
        + '","recorded_at":"2024-05-01T12:30:00.123456Z","stream":"order-42",'
        '"stream_version":1,"type":"order.created"}'
    )
    assert digest == hashlib.sha256(doc.encode()).hexdigest()


def test_auditor_rule_escapes_non_ascii_text() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    event = build_chain(
        "order-ä", [Fields("pröv", "id-é", "typ€", None, moment, b'"\\u00e9"', {"ä": "é"})]
    )[0]
    assert auditor_hash(event) == event.hash
    assert recorded_hash(event, GENESIS) == event.hash


def test_format_time_is_utc_with_microseconds_and_z() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 5, tzinfo=timezone(timedelta(hours=-2)))
    assert format_time(moment) == "2024-03-01T01:59:59.000005Z"


def test_format_time_pads_years_before_1000_to_four_digits() -> None:
    # Events recorded before the intake checked times may hold one such as
    # "0999-01-01T00:00:00Z"; the documented form is YYYY-..., so an auditor
    # following it must get the same hash.
    assert format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"


ENTRY = st.fixed_dictionaries({
    "anchor": st.sampled_from(["recorded", "countdown_closed"]),
    "at": st.integers(0, 2**40),
    "commitment": st.text(max_size=70),
    "keep_seconds": st.integers(0, 2**40),
    "path": st.lists(st.one_of(st.text(max_size=12), st.integers(0, 10**6)),
                     min_size=1, max_size=5),
})  # fmt: skip


@given(entries=st.lists(ENTRY, max_size=5))
def test_the_entries_canonical_text_is_json_dumps_of_them(entries: list[dict[str, Any]]) -> None:
    assert canonical_entries(entries) == json.dumps(entries, sort_keys=True, separators=(",", ":"))
