"""A delivery split into what the ledger keeps for ever and what it may forget
(docs/personal-data.md): the skeleton of its raw body, one entry per personal
value (where it was cut, its path, a salted commitment to its bytes, how long
it is kept), and apart from those the values with their salts.

A commitment is the lowercase hex HMAC-SHA256 of the value's bytes under a
random 32-byte salt. With the salt it proves the value; without it (erased
with the value) it confirms no guess, however few the possible values (a date
of birth, an e-mail address). The entries' canonical text is what hash rule 3
will cover beside the skeleton's digest.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Sequence

import msgspec

from events.chain import commitment
from personal.policy import Finder
from personal.spans import Span, cut, find_spans

SALT_BYTES = 32


class Entry(msgspec.Struct, frozen=True):
    """What the ledger keeps of one personal value: never the value."""

    path: tuple[str | int, ...]
    at: int
    """Where it was cut from the skeleton (a byte offset)."""
    commitment: str
    keep_seconds: int
    anchor: str


class Split(msgspec.Struct, frozen=True):
    """A raw body split: ``skeleton`` and ``entries`` are kept, ``salts`` and
    ``values`` held apart (the only place the values exist)."""

    skeleton: bytes
    entries: tuple[Entry, ...]
    salts: tuple[bytes, ...]
    values: tuple[bytes, ...]


def holds(entry: Entry, salt: bytes, value: bytes) -> bool:
    """Whether ``value`` (with ``salt``) is the one ``entry`` committed to."""
    # As bytes: a tampered commitment may hold any character, and compare_digest
    # refuses non-ASCII text rather than answering False.
    return hmac.compare_digest(entry.commitment.encode(), commitment(salt, value).encode())


def split(raw: bytes, finder: Finder | None) -> Split:
    """``raw`` split by the personal values ``finder`` finds (none: all kept)."""
    if finder is None:
        return Split(raw, (), (), ())
    return split_at(raw, find_spans(raw, finder))


def split_at(raw: bytes, spans: Sequence[Span]) -> Split:
    """``raw`` split at ``spans`` (found by ``find_spans`` or ``quick_spans``)."""
    skeleton, holes, values = cut(raw, spans)
    salts = tuple(secrets.token_bytes(SALT_BYTES) for _ in values)
    entries = tuple(
        Entry(span.path, hole, commitment(salt, value),
              int(span.retention.keep.total_seconds()), span.retention.anchor)
        for span, hole, salt, value in zip(spans, holes, salts, values, strict=True)
    )  # fmt: skip
    return Split(skeleton, entries, salts, tuple(values))


def canonical(entries: Sequence[Entry]) -> str:
    """The entries as the one JSON text a hash covers: an array of objects with
    sorted keys, no whitespace, non-ASCII escaped."""
    return json.dumps(
        [
            {"anchor": e.anchor, "at": e.at, "commitment": e.commitment,
             "keep_seconds": e.keep_seconds, "path": list(e.path)}
            for e in entries
        ],
        sort_keys=True,
        separators=(",", ":"),
    )  # fmt: skip
