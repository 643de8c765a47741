"""The personal-data policy: which values of which providers' events are
personal, and how long each stays readable in the ledger.

Written in the export policy's language (``[[rule]]`` with a provider glob,
event-type globs and ``events.json_paths`` paths), each rule adding a
retention: ``keep`` (a duration) counted ``from`` the event's recording or
from the close of the order's countdown. A value several rules name is kept
for the shortest ``keep``; on a tie, the one counted from the recording wins
(it never ends later). The default file (``default_policy.toml``) covers every
built-in provider; ``HOOKLEDGER_PERSONAL_DATA_POLICY`` replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import msgspec

from events.json_paths import Node, PathError, Paths, parse_path, read_policy_file

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")

Anchor = Literal["recorded", "countdown_closed"]
ANCHORS: tuple[Anchor, ...] = ("recorded", "countdown_closed")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class PersonalPolicyError(ValueError):
    """A policy that cannot be used; the message names the file and the problem."""


class Retention(msgspec.Struct, frozen=True, order=True):
    """How long a personal value stays readable, and from when. Ordered by
    strength: the shorter keep first, then the anchor that never ends later."""

    keep: timedelta
    anchor: Anchor = "recorded"

    @property
    def seconds(self) -> int:
        """``keep`` in whole seconds."""
        return int(self.keep.total_seconds())

    @property
    def label(self) -> str:
        return f"{self.seconds}s:{self.anchor}"

    @classmethod
    def from_label(cls, label: str) -> Retention:
        seconds, anchor = label.split(":", 1)
        return cls(timedelta(seconds=int(seconds[:-1])), anchor)  # type: ignore[arg-type]

    def stronger_than(self, other: Retention) -> bool:
        return (self.keep, ANCHORS.index(self.anchor)) < (other.keep, ANCHORS.index(other.anchor))


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Paths that are personal in the payloads of matching events, and their retention."""

    personal: list[str]
    keep: str
    provider: str = "*"
    types: list[str] = msgspec.field(default_factory=lambda: ["*"])
    from_: Anchor = msgspec.field(default="recorded", name="from")

    def matches(self, provider: str, type_: str) -> bool:
        return fnmatchcase(provider, self.provider) and any(
            fnmatchcase(type_, pattern) for pattern in self.types
        )

    @property
    def retention(self) -> Retention:
        return Retention(parse_keep(self.keep), self.from_)


class _PolicyFile(msgspec.Struct, forbid_unknown_fields=True):
    rule: list[Rule] = msgspec.field(default_factory=list)


class Found(msgspec.Struct, frozen=True):
    """One personal value of a payload: where it is, and how long it is kept."""

    path: tuple[str | int, ...]
    retention: Retention


def parse_keep(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m``, ``0s``: a whole number and one unit."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise PersonalPolicyError(f"keep {text!r}: a whole number and one of s, m, h, d")
    return timedelta(seconds=int(number) * _UNITS[unit])


def _stronger(label: str, other: str) -> bool:
    return Retention.from_label(label).stronger_than(Retention.from_label(other))


class Finder:
    """The policy for one (provider, type): finds the personal values of a payload."""

    def __init__(self, paths: Sequence[tuple[tuple[str, ...], Retention]]) -> None:
        self.root = Paths([(p, r.label) for p, r in paths], _stronger).root()
        self._retentions = {r.label: r for _, r in paths}

    def retention(self, label: str) -> Retention:
        """The retention a path's label stands for."""
        return self._retentions[label]

    def find(self, payload: Any) -> list[Found]:
        """Every personal value of ``payload``, outermost first; a value inside a
        personal value is not listed again (it goes with its container)."""
        found: list[Found] = []
        if self.root is not None and isinstance(payload, dict | list):
            self._walk(payload, self.root, (), found)
        return found

    def _walk(self, value: Any, node: Node, path: tuple[str | int, ...],
              found: list[Found]) -> None:  # fmt: skip
        # Run at every append of a covered event: only containers are walked
        # into, and an object's keys are looked up as they are.
        literals, other = node.literals, node.other
        items: Any = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            step = literals.get(key if isinstance(key, str) else str(key), other)
            if step is None:
                continue
            label, below = step
            if label is not None:
                found.append(Found((*path, key), self._retentions[label]))
            elif below is not None and isinstance(child, dict | list):
                self._walk(child, below, (*path, key), found)


class PersonalPolicy:
    """The rules; finds and caches each (provider, type)'s finder."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._finders: dict[tuple[str, str], Finder | None] = {}

    def finder(self, provider: str, type_: str) -> Finder | None:
        """What applies to this provider's events of this type; None if nothing."""
        key = (provider, type_)
        if key not in self._finders:
            paths: dict[tuple[str, ...], Retention] = {}
            for rule in self.rules:
                if rule.matches(provider, type_):
                    for text in rule.personal:
                        path, retention = parse_path(text), rule.retention
                        if path not in paths or retention.stronger_than(paths[path]):
                            paths[path] = retention
            self._finders[key] = Finder(sorted(paths.items())) if paths else None
        return self._finders[key]

    def find(self, provider: str, type_: str, payload: Any) -> list[Found]:
        """The personal values of one event's payload."""
        finder = self.finder(provider, type_)
        return [] if finder is None else finder.find(payload)


def load_policy(path: Path | None = None) -> PersonalPolicy:
    """The policy of a TOML file (the built-in default without one)."""

    def check(policy: _PolicyFile) -> None:
        for rule in policy.rule:
            rule.retention  # noqa: B018 (checked here, once, with the file named)
            for item in rule.personal:
                parse_path(item)

    try:
        return PersonalPolicy(
            read_policy_file(path or DEFAULT_POLICY_FILE, _PolicyFile, check).rule
        )
    except PathError as exc:
        raise PersonalPolicyError(str(exc)) from None
