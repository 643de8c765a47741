"""Cuts an event's personal values out before it is appended (the policy says
which): the skeleton and the nulled payload go into the ledger, the values with
their salts into ``personal_values``, where erasure and retention delete them."""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from events.chain import commitment, without_nul
from events.connector import Session
from events.json_paths import replace_at
from events.model import CutEvent, NewEvent
from personal.commitments import SALT_BYTES
from personal.lookup import lookup_hash, lookup_key
from personal.policy import PersonalPolicy
from personal.spans import NotJson, cut, find_spans, quick_spans

log = logging.getLogger(__name__)

Path = tuple[str | int, ...]


class PersonalCutter:
    """The personal-data policy applied at append (``events.model.Cutter``)."""

    def __init__(self, policy: PersonalPolicy, lookup_key: bytes | None = None) -> None:
        self._policy = policy
        self._lookup_key = lookup_key

    async def ready(self, session: Session) -> None:
        """Load the installation's lookup key (once)."""
        if self._lookup_key is None:
            self._lookup_key = await lookup_key(session)

    def cut(self, event: NewEvent) -> CutEvent | None:
        """``event`` with its personal values cut out; None when it has none."""
        finder = self._policy.finder(event.provider, event.type)
        if finder is None:
            return None
        # The payload is msgspec's encoding (the intake's): decoded and encoded
        # again it is the same text, so nulling its values there is exact.
        payload = msgspec.json.decode(event.payload_json)
        found = finder.find(payload)
        try:
            spans = quick_spans(event.raw, finder, found) if found else None
            if spans is None:
                spans = find_spans(event.raw, finder)
        except NotJson as exc:
            # The intake decoded the body, so this means the scanner and msgspec
            # disagree about it: kept whole rather than refused (nothing lost).
            log.error("personal values not cut: body not scanned",
                      extra={"provider": event.provider, "event_id": event.event_id[:200],
                             "error": str(exc)})  # fmt: skip
            return None
        if not spans:
            return None
        skeleton, holes, cut_values = cut(event.raw, spans)
        # A body with a \u escape may spell U+0000 in a key, which the payload
        # (and jsonb) holds as U+FFFD; without one, paths need no change.
        plain = _plain if b"\\u" in event.raw else _same
        held: dict[Path, bytes] = {}
        salts = os.urandom(SALT_BYTES * len(spans))
        entries: list[dict[str, Any]] = []
        values: list[dict[str, Any]] = []
        for n, (span, hole, value) in enumerate(zip(spans, holes, cut_values, strict=True)):
            path = plain(span.path)
            if path not in held:
                held[path] = _take(payload, path)
            kept = held[path] or None
            salt = salts[n * SALT_BYTES : (n + 1) * SALT_BYTES]
            keep, anchor = span.retention.seconds, span.retention.anchor
            entries.append({"anchor": anchor, "at": hole, "commitment": commitment(salt, value),
                            "keep_seconds": keep, "path": list(path)})  # fmt: skip
            # Bytes go as they are: the encoder writes them as base64, which the
            # insert decodes.
            values.append({
                "provider": event.provider, "event_id": event.event_id, "n": n,
                "path": [str(k) for k in path], "salt": salt, "value": value,
                "payload_value": msgspec.Raw(kept) if kept is not None else None,
                "lookup": self._lookup(path, kept), "anchor": anchor, "keep_seconds": keep,
            })  # fmt: skip
        for extra in found:
            # Personal in the payload but not where the raw body was cut (a
            # payload that is not the raw body's whole value): still never stored.
            if extra.path not in held:
                _take(payload, extra.path)
        nulled = msgspec.json.encode(payload)
        return CutEvent(raw=skeleton, payload_json=nulled, entries=entries, values=values)

    def _lookup(self, path: Path, held: bytes | None) -> bytes | None:
        """The keyed hash of the e-mail address this value is (or holds)."""
        if held is None:
            return None
        address = _address(path, held)
        if address is None:
            return None
        assert self._lookup_key is not None, "ready() loads the key before any cut"
        return lookup_hash(self._lookup_key, address)


def _take(payload: Any, path: Path) -> bytes:
    """The JSON text of the value at ``path``, which becomes null there; empty
    when the payload has no such path (a body the scanner reads otherwise)."""
    found, value = replace_at(payload, path, None)
    return msgspec.json.encode(value) if found else b""


def _same(path: Path) -> Path:
    return path


def _plain(path: Path) -> Path:
    """A path as the payload and jsonb spell it (U+0000 in a key is U+FFFD)."""
    return tuple(without_nul(k) if isinstance(k, str) else k for k in path)


def _address(path: Path, held: bytes) -> str | None:
    """The e-mail address a personal value is, or the first one inside it."""
    if b"@" not in held:
        return None
    try:
        value = msgspec.json.decode(held)
    except msgspec.DecodeError:
        return None
    key = path[-1] if path else ""
    return _find_address(value, isinstance(key, str) and "mail" in key.lower())


def _find_address(value: Any, named: bool) -> str | None:
    if isinstance(value, str):
        return value if named and "@" in value else None
    # A personal object (Shopify's customer) holds its address a level or two down.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(child, str) and "mail" in key.lower() and "@" in child:
                    return child
                if isinstance(child, dict | list) and depth < 3:
                    stack.append((child, depth + 1))
        elif isinstance(item, list) and depth < 3:
            stack.extend((child, depth + 1) for child in item[:50])
    return None
