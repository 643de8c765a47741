"""JSON paths as the data policies write them (the export policy, the personal
data policy), and the automaton that matches them while walking a payload.

A path is dot-separated keys: ``verification.person``. ``*`` stands for any one
key or array element, ``**`` for any number of levels (none included), and a
number for that array element: ``**.person`` is a ``person`` key at any depth,
``items.*.email`` the ``email`` of every item. Each path carries a label (what
to do where it matches); where several match one value, the strongest label
wins (the caller says which is stronger).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

ANY_KEY = "*"
ANY_DEPTH = "**"


class PathError(ValueError):
    """A path that names nothing sensible; the message says what is wrong."""


def parse_path(text: str) -> tuple[str, ...]:
    """Split and check a path; PathError if it names nothing sensible."""
    segments = tuple(text.split("."))
    if not text or any(not segment for segment in segments):
        raise PathError(f"path {text!r}: empty key (paths are keys separated by single dots)")
    if segments[-1] == ANY_DEPTH:
        raise PathError(f"path {text!r} cannot end with **")
    return segments


# -- matching: a small automaton over the keys on the way down --------------------

State = tuple[int, int]  # (which path, how many of its segments are matched)
Step = tuple["str | None", "Node | None"]
"""What a key leads to: the label matched on its value (if a path ends there),
and the node of the paths still going below it."""
NO_LITERAL = object()  # a key equal to no literal segment


class Paths:
    """Labelled paths compiled, and the nodes built from them so far.
    ``stronger(a, b)``: whether label ``a`` wins over ``b`` on one value."""

    def __init__(
        self,
        paths: Sequence[tuple[tuple[str, ...], str]],
        stronger: Callable[[str, str], bool],
    ) -> None:
        self.segments = [segments for segments, _ in paths]
        self.labels = [label for _, label in paths]
        self.stronger = stronger
        self.nodes: dict[frozenset[State], Node] = {}

    def root(self) -> Node | None:
        """Where a walk starts: every path at its first segment (None: no paths)."""
        return self.node((n, 0) for n in range(len(self.segments)))

    def node(self, states: Iterable[State]) -> Node | None:
        closed = self._closure(states)
        if not closed:
            return None
        node = self.nodes.get(closed)
        if node is None:
            # Registered before its transitions are built: ``**`` leads back to it.
            node = self.nodes[closed] = Node()
            node.build(self, closed)
        return node

    def _closure(self, states: Iterable[State]) -> frozenset[State]:
        # ``**`` may match no level at all: the segment after it is active too.
        result: set[State] = set()
        todo = list(states)
        while todo:
            path, index = todo.pop()
            if (path, index) in result:
                continue
            result.add((path, index))
            if self.segments[path][index] == ANY_DEPTH:
                todo.append((path, index + 1))
        return frozenset(result)

    def step(self, states: frozenset[State], key: object) -> Step:
        """What a child under ``key`` gets: a label on it, and the node below it."""
        label: str | None = None
        below: list[State] = []
        for path, index in states:
            segment = self.segments[path][index]
            if segment == ANY_DEPTH:
                below.append((path, index))
            elif segment in (ANY_KEY, key):
                if index + 1 == len(self.segments[path]):
                    found = self.labels[path]
                    if label is None or self.stronger(found, label):
                        label = found
                else:
                    below.append((path, index + 1))
        return label, self.node(below)


class Node:
    """A set of partly matched paths: what each key of a container leads to.

    A key's outcome depends only on which literal segment it equals, so it is
    computed once per literal plus once for every other key.
    """

    literals: dict[str, Step]
    other: Step | None
    loops: bool
    """Every key but the literals leads back to this node, with no label (``**``)."""
    indices: bool
    """Some literal is an array index."""

    def build(self, paths: Paths, states: frozenset[State]) -> None:
        literals = {
            paths.segments[p][i]
            for p, i in states
            if paths.segments[p][i] not in (ANY_KEY, ANY_DEPTH)
        }
        self.literals = {key: paths.step(states, key) for key in literals}
        other = paths.step(states, NO_LITERAL)
        # None: keys other than the literals lead nowhere, so only those are looked up.
        self.other = None if other == (None, None) else other
        self.loops = other[0] is None and other[1] is self
        self.indices = any(key.isdigit() for key in self.literals)


def needles(paths: Iterable[tuple[str, ...]]) -> tuple[str, ...] | None:
    """One quoted key per path that any match must contain in JSON text written
    without escapes; None if some path has none."""
    found = []
    for segments in paths:
        keys = [
            s
            for s in segments
            if s not in (ANY_KEY, ANY_DEPTH) and not s.isdigit() and s.isprintable()
            and '"' not in s and "\\" not in s
        ]  # fmt: skip
        if not keys:
            return None
        found.append(f'"{keys[-1]}"')
    return tuple(found)


def read_policy_file(source: Path, shape: type[T], checks: Callable[[T], None]) -> T:
    """A policy file (TOML) read into ``shape`` and passed through ``checks``
    (which raise ValueError); PathError naming the file for any problem."""
    try:
        document = tomllib.loads(source.read_text())
    except OSError as exc:
        raise PathError(f"cannot read {source}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PathError(f"{source} is not valid TOML: {exc}") from None
    try:
        policy = msgspec.convert(document, shape)
        checks(policy)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PathError(f"{source}: {exc}") from None
    return policy


_MISSING = object()


def replace_at(value: Any, path: Sequence[str | int], new: Any) -> tuple[bool, Any]:
    """Put ``new`` where ``path`` leads in ``value`` (objects and arrays, changed
    in place) and give back what was there: ``(True, old)``, or ``(False,
    None)`` when nothing is at that path (then nothing is added)."""
    target = value
    try:
        for key in path[:-1]:
            target = target[key]
        last = path[-1]
        if isinstance(target, dict):
            old = target.get(last, _MISSING)
        elif isinstance(target, list) and isinstance(last, int) and 0 <= last < len(target):
            old = target[last]
        else:
            old = _MISSING
    except (KeyError, IndexError, TypeError):
        return False, None
    if old is _MISSING:
        return False, None
    target[last] = new
    return True, old
