"""The per-stream SHA-256 hash chain, and what covers every field of an event.

Each event's ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of a JSON
object, its keys sorted, without whitespace, non-ASCII escaped (Python:
``json.dumps(doc, sort_keys=True, separators=(",", ":"))``). The event's
``hash_rule`` says which object:

- rule 1 (events recorded before issue 13): ``event_id, occurred_at, prev_hash,
  provider, raw_sha256, recorded_at, stream, stream_version, type``;
- rule 2: the same keys plus ``metadata`` (the event's metadata object itself,
  nested) and ``rule`` (the number 2);
- rule 3 (issue 14): rule 2's keys, ``rule`` 3, plus ``personal``: the list of
  the personal values cut out of the raw body, each an object ``anchor, at,
  commitment, keep_seconds, path`` (``personal.commitments``; an empty list
  when none was cut). ``raw_sha256`` is then the digest of the skeleton: the
  raw body without those values' bytes.

Timestamps are UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``occurred_at`` may be
null); ``raw_sha256`` is the hex SHA-256 of the exact bytes received; ``prev_hash``
is the previous event's hash in the stream, or 64 zeros for version 1. The
``payload`` is not hashed: it is the JSON value of ``raw`` and is checked against
it (``payload_matches``; under rule 3, against the skeleton with ``null`` in
each cut value's place); ``position`` is covered by the Merkle tree's order.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from events.errors import ChainBroken
from events.json_paths import replace_at
from events.model import RecordedEvent

GENESIS = "0" * 64
RULES = (1, 2, 3)
CURRENT_RULE = 3


def format_time(moment: datetime) -> str:
    """The one textual form of a timestamp, used in hashes and in every read."""
    u = moment.astimezone(UTC)
    # Spelled out: strftime's %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def event_hash(
    *,
    prev_hash: str,
    stream: str,
    stream_version: int,
    provider: str,
    event_id: str,
    type: str,
    occurred_at: datetime | None,
    recorded_at: datetime,
    raw_sha256: str,
    metadata: Mapping[str, Any] | None = None,
    rule: int = CURRENT_RULE,
    personal: str = "[]",
) -> str:
    """Hash one event onto its predecessor's hash, under hashing rule ``rule``.

    The canonical text is written out field by field, in sorted key order, with
    the same string escaping as ``json.dumps`` (the appender calls this for every
    event, and a generic sorted dump costs several times more); the tests check
    it against ``json.dumps`` of the documented object.
    """
    occurred = _quote(format_time(occurred_at)) if occurred_at is not None else "null"
    cut = ""
    if rule == 1:
        middle, extra = "", ""
    elif rule in (2, 3):
        middle = f'"metadata":{canonical_metadata(metadata or {})},'
        extra = f'"rule":{rule},'
        if rule == 3:
            cut = f'"personal":{personal},'
    else:
        raise ValueError(f"no hashing rule {rule}")
    encoded = (
        f'{{"event_id":{_quote(event_id)},{middle}"occurred_at":{occurred},{cut}'
        f'"prev_hash":{_quote(prev_hash)},"provider":{_quote(provider)},'
        f'"raw_sha256":{_quote(raw_sha256)},"recorded_at":{_quote(format_time(recorded_at))},'
        f'{extra}"stream":{_quote(stream)},"stream_version":{int(stream_version)},'
        f'"type":{_quote(type)}}}'
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def canonical_metadata(metadata: Mapping[str, Any]) -> str:
    """Metadata as rule 2 hashes it. Only strings, integers, booleans, null,
    arrays and objects: those come back from jsonb exactly as they went in (a
    float might not keep its spelling), so a float is refused at append time."""
    _check_exact(metadata)
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _check_exact(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("metadata keys are strings")
            _check_exact(item)
    elif isinstance(value, list):
        for item in value:
            _check_exact(item)
    elif value is not None and not isinstance(value, str | int):
        raise ValueError(f"metadata holds a {type(value).__name__}; only exact JSON values")


def recorded_hash(event: RecordedEvent, prev_hash: str) -> str:
    """Recompute a recorded event's hash from its fields, under its own rule."""
    return event_hash(
        prev_hash=prev_hash,
        stream=event.stream,
        stream_version=event.stream_version,
        provider=event.provider,
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        raw_sha256=hashlib.sha256(event.raw).hexdigest(),
        metadata=event.metadata,
        rule=event.hash_rule,
        personal=canonical_entries(event.personal or []),
    )


def canonical_entries(entries: Iterable[Mapping[str, Any]]) -> str:
    """The cut values' entries as rule 3 hashes them: an array of objects with
    sorted keys, no whitespace, non-ASCII escaped (``json.dumps`` of the list
    with ``sort_keys`` and compact separators, written out field by field as
    ``event_hash`` is: a test holds the two equal)."""
    return (
        "["
        + ",".join(
            f'{{"anchor":{_quote(e["anchor"])},"at":{_integer(e["at"])},'
            f'"commitment":{_quote(e["commitment"])},"keep_seconds":{_integer(e["keep_seconds"])},'
            f'"path":[{",".join(_key(k) for k in e["path"])}]}}'
            for e in entries
        )
        + "]"
    )


def _integer(value: Any) -> str:
    if type(value) is not int:
        raise ValueError(f"an entry holds {value!r} where an integer belongs")
    return str(value)


def _key(key: Any) -> str:
    return _quote(key) if isinstance(key, str) else _integer(key)


ENTRY_FIELDS = ("anchor", "at", "commitment", "keep_seconds", "path")


def chained_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries as the chain covers them (a read's extra fields, such as the
    value's state or an evidence file's salt, left out)."""
    return [{k: entry[k] for k in ENTRY_FIELDS} for entry in entries]


def commitment(salt: bytes, value: bytes) -> str:
    """The salted commitment to a personal value's bytes: the hex HMAC-SHA256
    of the value under its salt."""
    return hmac.digest(salt, value, "sha256").hex()


def personal_problem(
    skeleton: bytes,
    entries: Sequence[Mapping[str, Any]],
    held: Mapping[int, tuple[bytes, bytes]],
    payload: Any,
) -> str | None:
    """What is wrong with an event's personal values, or None: each value held
    (``held``: index to salt and value) must be the one its entry committed to,
    and ``payload`` (held values in place, erased ones null) the JSON value of
    the skeleton with them put back."""
    for n, (salt, value) in held.items():
        if n >= len(entries):
            raise ValueError(f"a value is held for entry {n}, which does not exist")
        expected = str(entries[n]["commitment"]).encode()
        if not hmac.compare_digest(expected, commitment(salt, value).encode()):
            return f"personal value {n} is not the one its commitment covers"
    whole = join(skeleton, [int(e["at"]) for e in entries],
                 [held[n][1] if n in held else None for n in range(len(entries))])  # fmt: skip
    if not payload_matches(whole, payload):
        return "payload is not the JSON value of the skeleton with its personal values"
    return None


def holes(event: RecordedEvent) -> list[int]:
    """Where each personal value was cut from the event's skeleton."""
    return [int(entry["at"]) for entry in event.personal or []]


def join(skeleton: bytes, cuts: Sequence[int], values: Sequence[bytes | None]) -> bytes:
    """A raw body again from its skeleton: each value put back where it was cut;
    one that is gone (None) reads as ``null``."""
    parts: list[bytes] = []
    done = 0
    for hole, value in zip(cuts, values, strict=True):
        parts += [skeleton[done:hole], b"null" if value is None else value]
        done = hole
    parts.append(skeleton[done:])
    return b"".join(parts)


def skeleton_as_json(event: RecordedEvent) -> bytes:
    """The raw body with ``null`` in each cut value's place: what the stored
    payload is the JSON value of."""
    cuts = holes(event)
    return join(event.raw, cuts, [None] * len(cuts)) if cuts else event.raw


def payload_matches(raw: bytes, payload: Any) -> bool:
    """Whether ``payload`` is the JSON value of ``raw``, as the intake stores it.

    Equal as JSON values: the same kinds, objects with the same keys, arrays of
    the same length; strings equal once every U+0000 of raw's (which jsonb cannot
    hold) is U+FFFD; a number raw writes as an integer equals the payload's
    exactly, any other number when both are the same IEEE 754 double (that is
    how the intake reads it).
    """
    try:
        value = json.loads(raw, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return False
    try:
        return _same(without_nul(value), payload)
    except RecursionError:
        return False


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _same(raw: Any, stored: Any) -> bool:
    if isinstance(raw, str):
        return isinstance(stored, str) and raw == stored
    if raw is None or isinstance(raw, bool):
        return stored is raw
    if isinstance(raw, int):
        return type(stored) is int and stored == raw
    if isinstance(raw, float):
        if isinstance(stored, bool) or not isinstance(stored, int | float):
            return False
        try:
            return math.isfinite(raw) and float(stored) == raw
        except OverflowError:
            return False
    if isinstance(raw, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(raw)
            and all(_same(a, b) for a, b in zip(raw, stored, strict=True))
        )
    if isinstance(raw, dict):
        if not isinstance(stored, dict) or len(stored) != len(raw):
            return False
        return all(key in stored and _same(item, stored[key]) for key, item in raw.items())
    return False


def stored_payload(event: RecordedEvent) -> Any:
    """The payload as the ledger stores it: a read puts the personal values
    still held back in place (``personal_payload``), the ledger holds null there."""
    if not event.personal:
        return event.payload
    payload = copy.deepcopy(event.payload)
    for entry in event.personal:
        # A path not in the payload stays absent: payload_matches will say so.
        replace_at(payload, entry["path"], None)
    return payload


def without_nul(value: Any) -> Any:
    """``value`` with every U+0000 in its strings and keys as U+FFFD, as the
    payload is stored (jsonb cannot hold U+0000); keys that become equal keep the
    last value."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def verify_stream(events: Iterable[RecordedEvent]) -> int:
    """Check one stream's events, given in version order; return how many.

    Raises ChainBroken at the first event that was changed, removed or moved.
    """
    expected_prev = GENESIS
    count = 0
    rule = 1
    stream = ""
    for count, event in enumerate(events, start=1):
        stream = event.stream
        if event.stream_version != count:
            raise ChainBroken(stream, count, f"found version {event.stream_version}")
        if event.prev_hash != expected_prev:
            raise ChainBroken(stream, count, "prev_hash does not match the previous hash")
        if event.hash_rule not in RULES or event.hash_rule < rule:
            raise ChainBroken(stream, count, f"hash rule {event.hash_rule} follows rule {rule}")
        rule = event.hash_rule
        try:
            recomputed = recorded_hash(event, expected_prev)
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainBroken(stream, count, f"personal entries unreadable: {exc}") from None
        if recomputed != event.hash:
            raise ChainBroken(stream, count, "hash does not match the event's contents")
        if not payload_matches(skeleton_as_json(event), stored_payload(event)):
            raise ChainBroken(stream, count, "payload is not the JSON value of raw")
        expected_prev = event.hash
    return count
