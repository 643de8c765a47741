"""Where the personal values of a delivery sit in its raw bytes.

A delivery's raw body is what its provider signed, kept so that the signature
can be checked again. To forget a personal value without losing the rest of
the body, the raw body can be kept as a skeleton with each personal value's
bytes cut out, and the cut bytes apart, where they can be deleted. This module
finds those byte ranges by scanning the JSON text itself (a value's bytes,
escapes and all, exactly as signed), following the policy's paths as the
finder does on the decoded payload; it cuts and joins.

It scans bodies the intake has already decoded as JSON: it finds values, it
does not validate them (NotJson only where it cannot go on). It keeps its own
stack: a body nested ten thousand levels deep is scanned, not a recursion
error. A key that appears twice in one object is personal in both places when
its path is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import NamedTuple

from events.json_paths import Node
from personal.policy import Finder, Found, Retention

_WHITESPACE = b" \t\n\r"
_CLOSE = {ord("{"): ord("}"), ord("["): ord("]")}


class NotJson(ValueError):
    """The raw body is not one JSON document (its personal values cannot be found)."""


class Span(NamedTuple):
    """The bytes ``raw[start:end]`` of one personal value."""

    start: int
    end: int
    path: tuple[str | int, ...]
    retention: Retention


class _Frame:
    """An object or array being scanned, and the policy's node inside it."""

    __slots__ = ("index", "is_object", "node", "path")

    def __init__(self, is_object: bool, node: Node | None, path: tuple[str | int, ...]) -> None:
        self.is_object = is_object
        self.node = node
        self.path = path
        self.index = 0


def find_spans(raw: bytes, finder: Finder) -> list[Span]:
    """The byte ranges of ``raw``'s personal values, in order, outermost only."""
    root = finder.root
    spans: list[Span] = []
    pos = _skip_ws(raw, 0)
    stack: list[_Frame] = []
    pending: tuple[Node | None, tuple[str | int, ...]] = (root, ())
    while True:
        node, path = pending
        if pos >= len(raw):
            raise NotJson("the body ends before its value")
        first = raw[pos]
        if node is not None and first in _CLOSE:
            stack.append(_Frame(first == ord("{"), node, path))
            pos = _skip_ws(raw, pos + 1)
        else:
            pos = _skip_ws(raw, _value_end(raw, pos))
        # Close what ended, then find the next value to scan (or finish).
        while True:
            if not stack:
                if _skip_ws(raw, pos) != len(raw):
                    raise NotJson(f"more after the JSON document at byte {pos}")
                return spans
            frame = stack[-1]
            if pos < len(raw) and raw[pos] == (ord("}") if frame.is_object else ord("]")):
                stack.pop()
                pos = _skip_ws(raw, pos + 1)
                continue
            if frame.index > 0:
                if pos >= len(raw) or raw[pos] != ord(","):
                    raise NotJson(f"expected ',' at byte {pos}")
                pos = _skip_ws(raw, pos + 1)
            key: str | int
            if frame.is_object:
                key_end = _string_end(raw, pos)
                key = json.loads(raw[pos:key_end])
                pos = _skip_ws(raw, key_end)
                if pos >= len(raw) or raw[pos] != ord(":"):
                    raise NotJson(f"expected ':' at byte {pos}")
                pos = _skip_ws(raw, pos + 1)
                name = str(key)
            else:
                key = frame.index
                name = str(frame.index)
            frame.index += 1
            assert frame.node is not None
            step = frame.node.literals.get(name, frame.node.other)
            label, below = step if step is not None else (None, None)
            if label is not None:
                end = _value_end(raw, pos)
                spans.append(Span(pos, end, (*frame.path, key), finder.retention(label)))
                pos = _skip_ws(raw, end)
                continue
            pending = (below, (*frame.path, key))
            break


# The tokens that matter to find where a container ends: strings (skipped
# whole, escapes and all) and brackets.
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_SCALAR = re.compile(rb"[^,\]}\s]+")
_COLON = re.compile(rb"\s*:\s*")


def quick_spans(raw: bytes, finder: Finder, found: Sequence[Found]) -> list[Span] | None:
    """``find_spans``'s answer found at C speed, or None when it cannot be sure.

    ``found`` is what the finder found in the decoded payload (document order,
    outermost). Every occurrence of one of their keys in ``raw`` is looked up
    by byte search; with no ``\\u`` escape in the body, a key can be spelt no
    other way, and in valid JSON ``"key"`` followed by a colon, its first quote
    not escaped, is that key. The occurrences (outermost) must then be exactly
    ``found``, one for one: any other (a repeated key, a key the policy names
    only at another path) sends the caller to the full scan.
    """
    if b"\\u" in raw:
        return None
    if any(not f.path or not isinstance(f.path[-1], str) for f in found):
        return None  # an array element named as personal: scan
    keys = {str(f.path[-1]) for f in found}
    starts: list[tuple[int, int, str]] = []
    for key in keys:
        quoted = b'"' + key.encode() + b'"'
        at = raw.find(quoted)
        while at >= 0:
            colon = _COLON.match(raw, at + len(quoted))
            if colon is not None and not _escaped(raw, at):
                value = colon.end()
                starts.append((value, _quick_end(raw, value), key))
            at = raw.find(quoted, at + 1)
    starts.sort()
    spans: list[Span] = []
    done = -1
    for start, end, key in starts:
        if start < done:
            continue  # inside a personal value already cut: it goes with it
        index = len(spans)
        if index >= len(found) or found[index].path[-1] != key:
            return None
        spans.append(Span(start, end, found[index].path, found[index].retention))
        done = end
    return spans if len(spans) == len(found) else None


def _escaped(raw: bytes, quote: int) -> bool:
    backslashes = 0
    while quote - 1 - backslashes >= 0 and raw[quote - 1 - backslashes] == ord("\\"):
        backslashes += 1
    return backslashes % 2 == 1


def _quick_end(raw: bytes, pos: int) -> int:
    first = raw[pos : pos + 1]
    if first == b'"':
        return _string_end(raw, pos)
    if first in (b"{", b"["):
        depth = 0
        for token in _STRING_OR_BRACKET.finditer(raw, pos):
            mark = token.group()
            if mark in (b"{", b"["):
                depth += 1
            elif mark in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    return token.end()
        raise NotJson("a container is not closed")
    scalar = _SCALAR.match(raw, pos)
    if scalar is None:
        raise NotJson(f"expected a value at byte {pos}")
    return scalar.end()


def cut(raw: bytes, spans: Sequence[Span]) -> tuple[bytes, list[int], list[bytes]]:
    """The skeleton (``raw`` without the spans' bytes), where each span was cut
    (offsets in the skeleton), and the bytes cut out."""
    parts: list[bytes] = []
    holes: list[int] = []
    values: list[bytes] = []
    done = size = 0
    for span in spans:
        parts.append(raw[done : span.start])
        size += span.start - done
        holes.append(size)
        values.append(raw[span.start : span.end])
        done = span.end
    parts.append(raw[done:])
    return b"".join(parts), holes, values


def _skip_ws(raw: bytes, pos: int) -> int:
    while pos < len(raw) and raw[pos] in _WHITESPACE:
        pos += 1
    return pos


def _string_end(raw: bytes, pos: int) -> int:
    """Where the string starting at ``pos`` ends (after its closing quote)."""
    if pos >= len(raw) or raw[pos] != ord('"'):
        raise NotJson(f"expected a string at byte {pos}")
    pos += 1
    while True:
        quote = raw.find(b'"', pos)
        if quote < 0:
            raise NotJson("a string is not closed")
        backslashes = 0
        while raw[quote - 1 - backslashes] == ord("\\"):
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        pos = quote + 1


def _value_end(raw: bytes, pos: int) -> int:
    """Where the value starting at ``pos`` ends (containers skipped whole,
    with a counter, not recursion)."""
    if pos >= len(raw):
        raise NotJson("the body ends before a value")
    first = raw[pos]
    if first == ord('"'):
        return _string_end(raw, pos)
    if first in _CLOSE:
        depth = 0
        while pos < len(raw):
            byte = raw[pos]
            if byte == ord('"'):
                pos = _string_end(raw, pos)
                continue
            if byte in (ord("{"), ord("[")):
                depth += 1
            elif byte in (ord("}"), ord("]")):
                depth -= 1
                if depth == 0:
                    return pos + 1
            pos += 1
        raise NotJson("a container is not closed")
    end = pos
    while end < len(raw) and raw[end] not in b",]}" and raw[end] not in _WHITESPACE:
        end += 1
    if end == pos:
        raise NotJson(f"expected a value at byte {pos}")
    return end
