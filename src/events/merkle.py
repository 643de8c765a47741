"""The RFC 9162 (Certificate Transparency v2) Merkle tree: the hash of a list of
leaves, inclusion proofs and consistency proofs, and their verification.

Leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``;
a tree of n > 1 leaves splits at the largest power of two below n. The
ledger's tree (issue 13) takes the event hashes, in position order, as its
leaves. Pure functions over bytes: an auditor's own verifier needs nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node from its children's hashes."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head (MTH) of ``leaves``, given as leaf data."""
    return _root([leaf_hash(leaf) for leaf in leaves]) if leaves else EMPTY_ROOT


def _root(hashes: Sequence[bytes]) -> bytes:
    # Pairwise, level by level: a last odd node moves up unpaired, which is
    # exactly the split at the largest power of two.
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves``."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*_path(m, hashes[:k]), _root(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _root(hashes[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree of the first ``old_size`` leaves is a prefix of
    the tree of ``leaves``."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {len(leaves)} leaves")
    return _subproof(old_size, [leaf_hash(leaf) for leaf in leaves], complete=True)


def _subproof(m: int, hashes: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [_root(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete=complete), _root(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], complete=False), _root(hashes[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose head is ``expected_root`` (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves (head ``old_root``)
    to be a prefix of the tree of ``new_size`` (head ``new_root``) (RFC 9162, 2.1.4.2)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old head is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- the same tree from stored nodes -------------------------------------------------
#
# A tree kept in a database stores every complete subtree as a node (level L,
# index i) over leaves [i * 2^L, (i + 1) * 2^L); level 0 holds the leaf hashes.
# Every subtree a proof needs starts at a multiple of a power of two at least as
# large as itself, so its hash folds from at most 64 stored nodes.

NodeKey = tuple[int, int]
Span = tuple[int, int]  # (first leaf, number of leaves)


def span_nodes(span: Span) -> list[NodeKey]:
    """The stored nodes whose hashes make up the subtree ``span``, left to right."""
    start, count = span
    keys: list[NodeKey] = []
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def span_hash(span: Span, nodes: dict[NodeKey, bytes]) -> bytes:
    """The head of the subtree ``span`` from its stored nodes."""
    keys = span_nodes(span)
    if not keys:
        return EMPTY_ROOT
    head = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        head = node_hash(nodes[key], head)
    return head


def inclusion_spans(index: int, size: int) -> list[Span]:
    """The subtrees whose heads make the audit path of leaf ``index`` in a tree
    of ``size`` leaves, in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    spans: list[Span] = []
    start, count, m = 0, size, index
    while count > 1:
        k = _split(count)
        if m < k:
            spans.append((start + k, count - k))
            count = k
        else:
            spans.append((start, k))
            start, count, m = start + k, count - k, m - k
    return spans[::-1]


def consistency_spans(old_size: int, new_size: int) -> list[Span]:
    """The subtrees whose heads make the consistency proof from ``old_size`` to
    ``new_size`` leaves, in proof order."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    spans: list[Span] = []
    start, count, m, complete = 0, new_size, old_size, True
    while m != count:
        k = _split(count)
        if m <= k:
            spans.append((start + k, count - k))
            count = k
        else:
            spans.append((start, k))
            start, count, m, complete = start + k, count - k, m - k, False
    if not complete:
        spans.append((start, count))
    return spans[::-1]


def frontier_nodes(size: int) -> list[NodeKey]:
    """The complete subtrees of a tree of ``size`` leaves that later leaves will
    be hashed onto: one per bit set in ``size``."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]


def append_leaves(
    size: int, frontier: dict[int, bytes], leaves: list[bytes]
) -> list[tuple[int, int, bytes]]:
    """Grow a tree of ``size`` leaves by ``leaves`` (leaf data); ``frontier``
    (level to hash of ``frontier_nodes(size)``) is updated in place. Returns
    every node completed, as (level, index, hash), level 0 first for each leaf."""
    made: list[tuple[int, int, bytes]] = []
    sha256, add = hashlib.sha256, made.append  # bound once: this runs for every event
    for data in leaves:
        head, level, index = sha256(b"\x00" + data).digest(), 0, size
        add((0, index, head))
        while index & 1:
            head = sha256(b"\x01" + frontier.pop(level) + head).digest()
            level, index = level + 1, index >> 1
            add((level, index, head))
        frontier[level] = head
        size += 1
    return made


def frontier_root(size: int, frontier: dict[int, bytes]) -> bytes:
    """The tree head of ``size`` leaves from its frontier."""
    return span_hash((0, size), {key: frontier[key[0]] for key in frontier_nodes(size)})
