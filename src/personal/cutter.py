"""Cuts an event's personal values out before it is appended (the policy says
which): the skeleton and the nulled payload go into the ledger, the values with
their salts into ``personal_values``, where erasure and retention delete them."""

from __future__ import annotations

import base64
import logging
from typing import Any

import msgspec

from events.chain import join, without_nul
from events.connector import Session
from events.model import CutEvent, NewEvent
from personal.commitments import split
from personal.lookup import lookup_hash, lookup_key
from personal.policy import PersonalPolicy
from personal.spans import NotJson, cut, find_spans

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
        try:
            parts = split(event.raw, finder)
            if not parts.entries:
                return None
            if event.payload_json == event.raw:
                in_payload = find_spans(event.raw, finder)
                payload = event.raw
            else:
                payload = event.payload_json
                in_payload = find_spans(payload, finder)
        except NotJson as exc:
            # The intake decoded the body, so this means the scanner and msgspec
            # disagree about it: kept whole rather than refused (nothing lost).
            log.error("personal values not cut: body not scanned",
                      extra={"provider": event.provider, "event_id": event.event_id[:200],
                             "error": str(exc)})  # fmt: skip
            return None
        skeleton, holes, cut_values = cut(payload, in_payload)
        nulled = join(skeleton, holes, [None] * len(holes))
        by_path: dict[Path, bytes] = {
            _plain(span.path): value for span, value in zip(in_payload, cut_values, strict=True)
        }
        entries: list[dict[str, Any]] = []
        values: list[dict[str, Any]] = []
        for n, (entry, salt, value) in enumerate(
            zip(parts.entries, parts.salts, parts.values, strict=True)
        ):
            path = _plain(entry.path)
            entries.append({"anchor": entry.anchor, "at": entry.at, "commitment": entry.commitment,
                            "keep_seconds": entry.keep_seconds, "path": list(path)})  # fmt: skip
            held = by_path.get(path)
            values.append({
                "provider": event.provider, "event_id": event.event_id, "n": n,
                "path": [str(k) for k in path],
                "salt": base64.b64encode(salt).decode(),
                "value": base64.b64encode(value).decode(),
                "payload_value": msgspec.Raw(held) if held is not None else None,
                "lookup": self._lookup(path, held),
                "anchor": entry.anchor, "keep_seconds": entry.keep_seconds,
            })  # fmt: skip
        return CutEvent(raw=parts.skeleton, payload_json=nulled, entries=entries, values=values)

    def _lookup(self, path: Path, held: bytes | None) -> str | None:
        """The keyed hash of the e-mail address this value is (or holds)."""
        if held is None:
            return None
        address = _address(path, held)
        if address is None:
            return None
        assert self._lookup_key is not None, "ready() loads the key before any cut"
        return base64.b64encode(lookup_hash(self._lookup_key, address)).decode()


def _plain(path: Path) -> Path:
    """A path as the payload and jsonb spell it (U+0000 in a key is U+FFFD)."""
    return tuple(without_nul(k) if isinstance(k, str) else k for k in path)


def _address(path: Path, held: bytes) -> str | None:
    """The e-mail address a personal value is, or the first one inside it."""
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
