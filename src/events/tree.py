"""The ledger's Merkle tree kept in the database, and the proofs it answers.

The ``tree`` consumer appends each event's hash as the next leaf, in position
order, storing the leaf and every subtree it completes (migration 0011) in the
same transaction as its checkpoint: the intake never waits for it. Proofs and
tree heads are folded from a few dozen stored nodes. Nothing stored here has to
be trusted: proofs are checked against signed checkpoints, and ``rebuild``
recomputes the tree from the events alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

import msgspec

from events import merkle
from events.checkpoints import commit_without_waiting
from events.connector import Database, Session
from events.errors import DataRefused, TreeBroken
from events.queries import QUERIES

TREE_CONSUMER = "tree"


def leaf_data(event_hash: str, position: int) -> bytes:
    """A leaf's data: the event's hash as 32 bytes (its hex decoded)."""
    try:
        data = bytes.fromhex(event_hash)
    except ValueError:
        data = b""
    if len(data) != 32:
        raise TreeBroken(f"the event at position {position} has no SHA-256 hash", position)
    return data


class EventHash(msgspec.Struct, frozen=True):
    """What the tree reads of an event."""

    position: int
    hash: str
    event_id: str = ""  # what a consumer's runner names a failing event by


class LeafSource(Protocol):
    @property
    def position(self) -> int: ...

    @property
    def hash(self) -> str: ...


async def read_hashes_after(db: Database, position: int, limit: int) -> list[EventHash]:
    """Up to ``limit`` events' positions and hashes after ``position``, in order."""
    rows = await db.fetch_all(QUERIES["read_hashes_after"], (position, limit))
    return [EventHash(int(r[0]), r[1]) for r in rows]


class TreeConsumer:
    """Grows the stored tree by every event, in position order. It never sets an
    event aside: a leaf missing would make every later proof wrong, so a failure
    stops it (its job restarts and /health says so) until the ledger is mended."""

    name = TREE_CONSUMER

    async def apply(self, session: Session, events: Sequence[LeafSource]) -> None:
        try:
            await self._grow(session, events)
        except DataRefused as exc:
            # Never set aside (the runner would skip the event): stop and say why.
            raise TreeBroken(f"the tree could not take events {events[0].position}.."
                             f"{events[-1].position}: {exc.detail}") from exc  # fmt: skip

    async def _grow(self, session: Session, events: Sequence[LeafSource]) -> None:
        # The tree is derived: a crash may lose its last batches (with the
        # checkpoint that counted them, in the same transaction), never the
        # ledger, so its commits need not wait for the disk.
        await commit_without_waiting(session)
        row = await session.fetch_one(QUERIES["tree_size"])
        size = int(row[0]) if row else 0
        stored = await _nodes(session, merkle.frontier_nodes(size))
        frontier = {level: head for (level, _), head in stored.items()}
        nodes: list[tuple[int, int, bytes]] = []

        def leaf_lines() -> Iterator[str]:
            # Hashed a slice at a time, each slice sent while the next is hashed;
            # formatted by hand for COPY (bytea as \\x + hex), several times
            # faster than adapting row by row.
            for start in range(0, len(events), _SLICE):
                part = events[start : start + _SLICE]
                datas = [leaf_data(e.hash, e.position) for e in part]
                made = merkle.append_leaves(size + start, frontier, datas)
                nodes.extend(m for m in made if m[0] > 0)
                leaves = [(index, head) for level, index, head in made if level == 0]
                yield "".join(
                    f"{index}\t{e.position}\t\\\\x{head.hex()}\n"
                    for (index, head), e in zip(leaves, part, strict=True)
                )

        def node_lines() -> Iterator[str]:
            for start in range(0, len(nodes), _SLICE):
                yield "".join(
                    f"{lv}\t{ix}\t\\\\x{h.hex()}\n" for lv, ix, h in nodes[start : start + _SLICE]
                )

        await session.copy_text("tree_leaves", ("leaf_index", "position", "hash"), leaf_lines())
        await session.copy_text("tree_nodes", ("level", "index", "hash"), node_lines())


_SLICE = 2000


async def _nodes(
    source: Session | Database, keys: list[merkle.NodeKey]
) -> dict[merkle.NodeKey, bytes]:
    if not keys:
        return {}
    leaves = [index for level, index in keys if level == 0]
    upper = [(level, index) for level, index in keys if level > 0]
    rows = await source.fetch_all(
        QUERIES["tree_nodes"], (leaves, [k[0] for k in upper], [k[1] for k in upper])
    )
    found = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}
    missing = set(keys) - found.keys()
    if missing:
        raise TreeBroken(f"the stored tree lacks {len(missing)} node(s), e.g. {min(missing)}")
    return found


async def tree_size(db: Database) -> int:
    """How many leaves the stored tree has."""
    row = await db.fetch_one(QUERIES["tree_size"])
    return int(row[0]) if row else 0


async def tree_head(db: Database, size: int) -> bytes:
    """The head of the tree of the first ``size`` leaves (stored ones)."""
    keys = merkle.span_nodes((0, size))
    return merkle.span_hash((0, size), await _nodes(db, keys))


async def _heads(db: Database, spans: list[merkle.Span]) -> list[bytes]:
    keys = sorted({key for span in set(spans) for key in merkle.span_nodes(span)})
    nodes = await _nodes(db, keys)
    return [merkle.span_hash(span, nodes) for span in spans]


class Leaf(msgspec.Struct, frozen=True):
    """An event's leaf: its index, the stored leaf hash, and the event's hash now
    (None if the ledger no longer has the event)."""

    index: int
    leaf_hash: bytes
    event_hash: str | None


async def leaf_of(db: Database, position: int) -> Leaf | None:
    """The leaf of the event at ``position``, once the tree has it."""
    row = await db.fetch_one(QUERIES["tree_leaf_at"], (position,))
    return Leaf(int(row[0]), bytes(row[1]), row[2]) if row else None


async def inclusion_proof(db: Database, leaf_index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``leaf_index`` in the tree of ``size`` leaves."""
    return (await inclusion_proofs(db, [leaf_index], size))[0]


async def inclusion_proofs(db: Database, leaf_indexes: list[int], size: int) -> list[list[bytes]]:
    """The audit paths of several leaves in the tree of ``size`` leaves, from one read."""
    wanted = [merkle.inclusion_spans(index, size) for index in leaf_indexes]
    heads = iter(await _heads(db, [span for spans in wanted for span in spans]))
    return [[next(heads) for _ in spans] for spans in wanted]


async def consistency_proof(db: Database, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of ``new_size``'s."""
    if old_size == new_size:
        return []
    return await _heads(db, merkle.consistency_spans(old_size, new_size))


class Rebuilt(msgspec.Struct, frozen=True):
    """The tree recomputed from the events: its size, its head at each size asked
    for, and the position of the last event within each of those sizes."""

    size: int
    heads: dict[int, bytes]
    last_positions: dict[int, int]


async def rebuild(
    rows: AsyncIterator[list[Any]],
    sizes: set[int],
    stored: AsyncIterator[list[Any]] | None = None,
) -> Rebuilt:
    """Recompute the tree from batches of (position, hash) rows in position
    order, keeping only its frontier; note the head at every size in ``sizes``.
    With ``stored`` (batches of the stored leaves' (leaf_index, position, hash) in
    order), an event whose leaf is not the stored one raises TreeBroken naming
    its position: that is where a rewrite of the ledger begins."""
    frontier: dict[int, bytes] = {}
    size = 0
    heads: dict[int, bytes] = {0: merkle.EMPTY_ROOT} if 0 in sizes else {}
    last_positions: dict[int, int] = {}
    cuts = sorted(s for s in sizes if s > 0)
    pending: list[Any] = []
    stored_batches = aiter(stored) if stored is not None else None
    async for batch in rows:
        datas = [leaf_data(h, int(p)) for p, h in batch]
        if stored_batches is not None:
            while len(pending) < len(batch):
                more = await anext(stored_batches, None)
                if more is None:
                    break
                pending.extend(more)
            for offset, ((position, _), data) in enumerate(zip(batch, datas, strict=True)):
                _same_leaf(pending[offset] if offset < len(pending) else None, size + offset,
                           int(position), data)  # fmt: skip
            del pending[: len(batch)]
        start = 0
        while cuts and cuts[0] <= size + len(datas) - start:
            take = cuts.pop(0) - size
            merkle.append_leaves(size, frontier, datas[start : start + take])
            size, start = size + take, start + take
            heads[size] = merkle.frontier_root(size, frontier)
            last_positions[size] = int(batch[start - 1][0])
        merkle.append_leaves(size, frontier, datas[start:])
        size += len(datas) - start
    if stored_batches is not None:
        extra = pending[:1] or (await anext(stored_batches, None) or [])[:1]
        if extra:
            index, position, _ = extra[0]
            raise TreeBroken(
                f"the tree has leaf {index} (position {position}) but the ledger has only"
                f" {size} events: its tail was removed",
                int(position),
            )
    return Rebuilt(size=size, heads=heads, last_positions=last_positions)


def _same_leaf(stored: Any, index: int, position: int, data: bytes) -> None:
    if stored is None:
        return  # the tree has not reached this event yet
    leaf_index, stored_position, stored_hash = stored
    if int(leaf_index) != index or int(stored_position) != position:
        raise TreeBroken(
            f"leaf {index} is the event at position {stored_position} in the tree,"
            f" but position {position} in the ledger",
            min(position, int(stored_position)),
        )
    if bytes(stored_hash) != merkle.leaf_hash(data):
        raise TreeBroken(
            f"the event at position {position} is not the one the tree recorded", position
        )
