"""A naive reference of the export policy: every concrete path of a body
matched against every pattern, written without the policy's automaton."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import msgspec


def glob_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return glob_match(rest, path) or (bool(path) and glob_match(pattern, path[1:]))
    return bool(path) and head in ("*", path[0]) and glob_match(rest, path[1:])


def reference(
    value: Any, drop: list[tuple[str, ...]], hash_: list[tuple[str, ...]], key: bytes
) -> Any:
    """What the policy must make of ``value``: a matched drop removes, a matched
    hash replaces, anything else is descended into (indices are the original ones)."""

    def visit(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            items = [(k, k, v) for k, v in node.items()]
        elif isinstance(node, list):
            items = [(i, str(i), v) for i, v in enumerate(node)]
        else:
            return node
        kept = []
        for original, name, child in items:
            where = (*path, name)
            if any(glob_match(p, where) for p in drop):
                continue
            if any(glob_match(p, where) for p in hash_):
                kept.append((original, hmac_of(child, key)))
            else:
                kept.append((original, visit(child, where)))
        return dict(kept) if isinstance(node, dict) else [v for _, v in kept]

    return visit(value, ())


def hmac_of(value: Any, key: bytes) -> str | None:
    if value is None:
        return None
    # Other values are hashed as msgspec's compact JSON with sorted keys.
    data = value.encode() if isinstance(value, str) else msgspec.json.encode(value, order="sorted")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def concrete_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = [(str(i), v) for i, v in enumerate(value)]
    for name, child in children:
        yield (*path, name)
        yield from concrete_paths(child, (*path, name))
