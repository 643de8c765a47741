"""From an HTTP delivery to ledger events: bounded body, JSON, event records."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from api.providers.base import Adapter, Normalised
from api.rejections import BodyTooLarge, MalformedBody, UnsupportedMediaType
from events.chain import without_nul
from events.model import NewEvent

MAX_DEPTH = 64
_NUL_ESCAPE = b"\\u0000"


def check_content_type(content_type: str | None) -> None:
    """JSON bodies only: ``application/json`` or any ``application/*+json``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {media or 'none'!r}"
        )


def check_declared_length(content_length: str | None, limit: int) -> None:
    """Refuse early when the declared length is already over the limit."""
    declared = content_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit}")


def decode_json(body: bytes) -> tuple[Any, bytes]:
    """Parse a body; return it and the JSON text to store as the payload.

    The stored text is re-encoded, so it is always valid for Postgres' jsonb,
    which cannot hold NUL characters: those become U+FFFD in the payload (the
    raw bytes keep them).
    """
    if not body:
        raise MalformedBody("the body is empty")
    try:
        parsed = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise MalformedBody("the body is nested too deeply") from exc
    # A body cannot nest deeper than it has opening brackets; counting them runs
    # at C speed, so ordinary bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(parsed) > MAX_DEPTH:
        raise MalformedBody(f"the body is nested more than {MAX_DEPTH} levels deep")
    return parsed, encode_payload(parsed)


def encode_payload(value: Any) -> bytes:
    """JSON text for the ``payload`` column (NUL characters become U+FFFD)."""
    encoded = msgspec.json.encode(value)
    if _NUL_ESCAPE in encoded:
        encoded = msgspec.json.encode(without_nul(value))
    return encoded


def split_array(body: bytes) -> list[tuple[int, bytes]]:
    """Each element of a JSON array body, as (offset, its exact bytes in ``body``).

    msgspec hands the elements back undecoded (``Raw``); each one's offset is
    where its bytes next occur, since only white space and a comma separate them.
    """
    try:
        elements = msgspec.json.decode(body, type=list[msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedBody(f"the body must be a JSON array: {exc}") from exc
    parts: list[tuple[int, bytes]] = []
    offset = 0
    for element in elements:
        piece = bytes(element)
        offset = body.index(piece, offset)
        parts.append((offset, piece))
        offset += len(piece)
    return parts


def _depth(value: Any, level: int = 0) -> int:
    """How many containers deep ``value`` nests (a scalar is 0, ``[]`` is 1)."""
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def to_new_events(
    adapter: Adapter,
    found: list[Normalised],
    payload_json: bytes,
    body: bytes,
    headers: Mapping[str, str],
    correlation_id: str | None,
) -> list[NewEvent]:
    """The ledger records for a verified delivery.

    A batch provider's delivery becomes a record of the delivery itself (the
    whole body, so its signature can be checked again; type
    ``<provider>.delivery``), then one event per element, whose ``raw`` is the
    element's own bytes and whose metadata says where they stand in the delivery.
    """
    metadata: dict[str, Any] = {
        "correlation_id": correlation_id,
        "scheme": adapter.scheme,
        "headers": {h: headers[h] for h in adapter.signature_headers if h in headers},
    }
    if (agent := headers.get("user-agent")) is not None:
        metadata["user_agent"] = agent[:200]
    if adapter.batch:
        return _batch_events(adapter, found, payload_json, body, metadata)
    return [
        NewEvent(
            provider=adapter.name,
            event_id=item.event_id,
            stream=item.stream,
            type=item.type,
            payload_json=payload_json if len(found) == 1 else encode_payload(item.payload),
            raw=body,
            occurred_at=item.occurred_at,
            metadata=metadata if item.order_id is None else {**metadata, "order_id": item.order_id},
        )
        for item in found
    ]


def _batch_events(
    adapter: Adapter,
    found: list[Normalised],
    payload_json: bytes,
    body: bytes,
    metadata: dict[str, Any],
) -> list[NewEvent]:
    parts = split_array(body)
    if len(parts) != len(found):
        raise MalformedBody("the body's elements and the events read from them differ")
    digest = hashlib.sha256(body).hexdigest()
    delivery = NewEvent(
        provider=adapter.name,
        event_id=f"delivery:{digest}",
        stream=f"{adapter.name}-delivery-{digest}",
        type=f"{adapter.name}.delivery",
        payload_json=payload_json,
        raw=body,
        occurred_at=None,
        metadata={**metadata, "events": len(found)},
    )
    events = [delivery]
    for item, (offset, piece) in zip(found, parts, strict=True):
        extra: dict[str, Any] = {"delivery": delivery.event_id, "offset": offset}
        if item.order_id is not None:
            extra["order_id"] = item.order_id
        events.append(
            NewEvent(
                provider=adapter.name,
                event_id=item.event_id,
                stream=item.stream,
                type=item.type,
                payload_json=encode_payload(item.payload),
                raw=piece,
                occurred_at=item.occurred_at,
                metadata={**metadata, **extra},
            )
        )
    return events
