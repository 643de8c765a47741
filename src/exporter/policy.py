"""The personal data policy: per provider and event type, the JSON paths of the
payload to drop or to replace by a keyed hash before an event leaves the ledger.

Paths are those of ``events.json_paths``: ``verification.person``,
``**.person`` (at any depth), ``items.*.email``. Where a drop and a hash both
match, the drop wins. Hashing replaces a value by the lowercase hex
HMAC-SHA256, under the policy's key, of the string's UTF-8 (or of the compact,
key-sorted JSON of any other value); null stays null. The ledger is never
changed: auditors keep reading the full record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import msgspec

from events import json_paths
from events.json_paths import Node, PathError, Paths, Step

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")


class PolicyError(PathError):
    """A policy file or path that cannot be used; the message says what is wrong."""


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Paths to drop and to hash in the payloads of matching events."""

    provider: str = "*"
    """A glob over provider names."""
    types: list[str] = msgspec.field(default_factory=lambda: ["*"])
    """Globs over event types."""
    drop: list[str] = msgspec.field(default_factory=list)
    hash: list[str] = msgspec.field(default_factory=list)

    def matches(self, provider: str, type_: str) -> bool:
        return fnmatchcase(provider, self.provider) and any(
            fnmatchcase(type_, pattern) for pattern in self.types
        )


class _PolicyFile(msgspec.Struct, forbid_unknown_fields=True):
    rule: list[Rule] = msgspec.field(default_factory=list)


def parse_path(text: str) -> tuple[str, ...]:
    """Split and check a path; PolicyError if it names nothing sensible."""
    try:
        return json_paths.parse_path(text)
    except PathError as exc:
        raise PolicyError(str(exc)) from None


def _drop_wins(label: str, other: str) -> bool:
    return label == "drop"


class Redactor:
    """The policy for one (provider, type): applies its paths to a payload."""

    def __init__(
        self, drop: Iterable[tuple[str, ...]], hash_: Iterable[tuple[str, ...]], key: bytes
    ) -> None:
        paths: list[tuple[tuple[str, ...], str]] = [(p, "drop") for p in drop]
        paths += [(p, "hash") for p in hash_]
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._root = Paths(paths, _drop_wins).root()
        self._needles = json_paths.needles(segments for segments, _ in paths)

    def apply(self, value: Any) -> Any:
        """The value with the paths dropped or hashed (changed in place)."""
        if self._root is not None:
            self._walk(value, self._root)
        return value

    def apply_text(self, text: str) -> str:
        """The same on JSON text; unchanged text when nothing can match."""
        if self._root is None or not self._may_match(text):
            return text
        try:
            value = _decoder.decode(text)
        except msgspec.ValidationError:
            # A number beyond 64 bits: decoded exactly, the slow way.
            value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        return _encoder.encode(self.apply(value)).decode()

    def _may_match(self, text: str) -> bool:
        # Without any backslash every key is spelled literally in the text, so a
        # path can only match where one of its keys appears in quotes.
        if self._needles is None or "\\" in text:
            return True
        for needle in self._needles:  # noqa: SIM110 (no generator per event)
            if needle in text:
                return True
        return False

    def _walk(self, value: Any, node: Node) -> None:
        if type(value) is dict:
            literals = node.literals
            if node.loops:
                # Under ``**`` every other key leads back here, so one pass finds the
                # literal keys and descends into the other containers.
                hits = []
                for key, child in value.items():
                    if key in literals:
                        hits.append(key)
                    elif type(child) is dict or type(child) is list:
                        self._walk(child, node)
                for key in hits:
                    self._visit(value, key, literals[key])
                return
            for key, step in literals.items():
                if key in value:
                    self._visit(value, key, step)
            if node.other is not None:
                for key in [k for k in value if k not in literals]:
                    self._visit(value, key, node.other)
        elif type(value) is list:
            if node.loops and not node.indices:
                for child in value:
                    if type(child) is dict or type(child) is list:
                        self._walk(child, node)
                return
            dropped = []
            for index in range(len(value)):
                found = node.literals.get(str(index), node.other) if node.indices else node.other
                if found is None:
                    continue
                if found[0] == "drop":
                    dropped.append(index)
                else:
                    self._visit(value, index, found)
            for index in reversed(dropped):
                del value[index]

    def _visit(self, container: Any, key: Any, step: Step) -> None:
        action, below = step
        if action == "drop":
            del container[key]
        elif action == "hash":
            container[key] = self.hash(container[key])
        elif below is not None:
            child = container[key]
            if type(child) is dict or type(child) is list:
                self._walk(child, below)

    def hash(self, value: Any) -> Any:
        """The keyed hash of one value (null stays null)."""
        if value is None:
            return None
        mac = self._mac.copy()  # the key is mixed in once, not per value
        mac.update(value.encode() if isinstance(value, str) else _canonical.encode(value))
        return mac.hexdigest()


_UNKNOWN: Any = object()
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder(decimal_format="number")
_canonical = msgspec.json.Encoder(decimal_format="number", order="sorted")


class Policy:
    """Rules, and the key of the hash; finds and caches each (provider, type)'s redactor."""

    def __init__(self, rules: Sequence[Rule], key: bytes) -> None:
        if not key:
            raise PolicyError("the hash key is empty")
        for rule in rules:
            for path in (*rule.drop, *rule.hash):
                parse_path(path)
        self.rules = tuple(rules)
        self._key = key
        self._redactors: dict[tuple[str, str], Redactor | None] = {}

    def redactor(self, provider: str, type_: str) -> Redactor | None:
        """What applies to this provider's events of this type; None if nothing."""
        cache_key = (provider, type_)
        if cache_key not in self._redactors:
            matching = [r for r in self.rules if r.matches(provider, type_)]
            drop = {parse_path(p) for r in matching for p in r.drop}
            hash_ = {parse_path(p) for r in matching for p in r.hash}
            self._redactors[cache_key] = (
                Redactor(sorted(drop), sorted(hash_), self._key) if drop or hash_ else None
            )
        return self._redactors[cache_key]

    def apply_text(self, provider: str, type_: str, payload: str) -> str:
        """The payload's JSON text as it may be exported."""
        redactor = self._redactors.get((provider, type_), _UNKNOWN)
        if redactor is _UNKNOWN:
            redactor = self.redactor(provider, type_)
        return payload if redactor is None else redactor.apply_text(payload)


def load_rules(path: Path | None = None) -> list[Rule]:
    """The rules of a TOML policy file (the built-in default without one)."""

    def check(policy: _PolicyFile) -> None:
        for rule in policy.rule:
            for item in (*rule.drop, *rule.hash):
                parse_path(item)

    try:
        return json_paths.read_policy_file(path or DEFAULT_POLICY_FILE, _PolicyFile, check).rule
    except PathError as exc:
        raise PolicyError(str(exc)) from None
