"""The per-stream SHA-256 hash chain.

Each event's ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of a JSON
object with exactly these keys, sorted, without whitespace, non-ASCII escaped
(Python: ``json.dumps(doc, sort_keys=True, separators=(",", ":"))``)::

    event_id, occurred_at, prev_hash, provider, raw_sha256, recorded_at,
    stream, stream_version, type

Timestamps are UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``occurred_at`` may be
null); ``raw_sha256`` is the hex SHA-256 of the exact bytes received; ``prev_hash``
is the previous event's hash in the stream, or 64 zeros for version 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote

from events.errors import ChainBroken
from events.model import RecordedEvent

GENESIS = "0" * 64


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
) -> str:
    """Hash one event onto its predecessor's hash.

    The canonical text is written out field by field, in sorted key order, with
    the same string escaping as ``json.dumps`` (the appender calls this for every
    event, and a generic sorted dump costs several times more); the tests check
    it against ``json.dumps`` of the documented object.
    """
    occurred = _quote(format_time(occurred_at)) if occurred_at is not None else "null"
    encoded = (
        f'{{"event_id":{_quote(event_id)},"occurred_at":{occurred},'
        f'"prev_hash":{_quote(prev_hash)},"provider":{_quote(provider)},'
        f'"raw_sha256":{_quote(raw_sha256)},"recorded_at":{_quote(format_time(recorded_at))},'
        f'"stream":{_quote(stream)},"stream_version":{int(stream_version)},'
        f'"type":{_quote(type)}}}'
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def recorded_hash(event: RecordedEvent, prev_hash: str) -> str:
    """Recompute a recorded event's hash from its fields."""
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
    )


def verify_stream(events: Iterable[RecordedEvent]) -> int:
    """Check one stream's events, given in version order; return how many.

    Raises ChainBroken at the first event that was changed, removed or moved.
    """
    expected_prev = GENESIS
    count = 0
    stream = ""
    for count, event in enumerate(events, start=1):
        stream = event.stream
        if event.stream_version != count:
            raise ChainBroken(stream, count, f"found version {event.stream_version}")
        if event.prev_hash != expected_prev:
            raise ChainBroken(stream, count, "prev_hash does not match the previous hash")
        if recorded_hash(event, expected_prev) != event.hash:
            raise ChainBroken(stream, count, "hash does not match the event's contents")
        expected_prev = event.hash
    return count
