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
from collections.abc import Sequence
from typing import NamedTuple

from events.json_paths import Node
from personal.policy import Finder, Retention

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
