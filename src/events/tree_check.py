"""``verify``'s view of history: the tree recomputed from the events must be the
stored one, and its head at every checkpoint's size must be the head that
checkpoint signed (those recorded, and any an auditor kept)."""

from __future__ import annotations

from contextlib import aclosing

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events import tree
from events.checkpoint_log import all_checkpoints
from events.checkpoint_note import Checkpoint, fingerprint, verify
from events.connector import Database
from events.errors import TreeBroken
from events.queries import QUERIES


class TreeReport(msgspec.Struct, frozen=True):
    events: int
    tree_leaves: int
    checkpoints: int
    unchecked_signatures: int  # recorded checkpoints signed by another key than the one given


async def verify_tree(
    db: Database,
    key: tuple[str, Ed25519PublicKey] | None = None,
    kept: list[Checkpoint] | None = None,
) -> TreeReport:
    """Recompute the tree from the events (one snapshot) and hold it against the
    stored leaves, every recorded checkpoint (their signatures checked with
    ``key`` when it signed them) and the checkpoints in ``kept``. Raises
    TreeBroken naming the first position known to differ."""
    kept = kept or []
    async with db.snapshot() as session:
        recorded = await all_checkpoints(session)
        sizes = {c.size for c in recorded} | {c.size for c in kept}
        stored_size = await session.fetch_one(QUERIES["tree_size"])
        # Closed however the rebuild ends: a break found midway leaves no open cursor.
        async with (
            aclosing(session.stream_batches(QUERIES["event_hashes_in_order"], size=5000)) as events,
            aclosing(
                session.stream_batches(
                    QUERIES["tree_leaf_hashes_in_order"], size=5000, cursor="hookledger_tree"
                )
            ) as leaves,  # fmt: skip
        ):
            rebuilt = await tree.rebuild(events, sizes, leaves)
    unchecked = 0
    claims: list[tuple[str, Checkpoint]] = []
    for signed in recorded:
        claimed = _claim(signed.note, signed.origin, key, signed.key_fingerprint)
        if claimed is None:
            unchecked += 1
            claimed = Checkpoint(signed.origin, signed.size, signed.root)
        elif claimed.size != signed.size or claimed.root != signed.root:
            raise TreeBroken(
                f"the checkpoint recorded for size {signed.size} is not what its note signed"
            )
        claims.append((f"the signed checkpoint of size {signed.size}", claimed))
    claims.extend((f"the kept checkpoint of size {c.size}", c) for c in kept)
    good = 0
    for what, claim in sorted(claims, key=lambda item: item[1].size):
        if claim.size > rebuilt.size:
            raise TreeBroken(
                f"{what} covers {claim.size} events but the ledger has {rebuilt.size}: "
                "events were removed"
            )
        if rebuilt.heads.get(claim.size) != claim.root:
            after = rebuilt.last_positions.get(good, 0)
            upto = rebuilt.last_positions.get(claim.size, 0)
            raise TreeBroken(
                f"{what} does not match the ledger: an event at a position after {after}"
                f" and up to {upto} was changed, removed or moved",
                after + 1,
            )
        good = max(good, claim.size)
    return TreeReport(
        events=rebuilt.size,
        tree_leaves=int(stored_size[0]) if stored_size else 0,
        checkpoints=len(claims),
        unchecked_signatures=unchecked,
    )


def _claim(
    note: str, origin: str, key: tuple[str, Ed25519PublicKey] | None, key_fingerprint: str
) -> Checkpoint | None:
    """What a recorded note signed, when ``key`` is the key that signed it."""
    if key is None or fingerprint(key[1]) != key_fingerprint:
        return None
    try:
        return verify(note, key[0], key[1])
    except ValueError as exc:
        raise TreeBroken(f"a recorded checkpoint's signature does not verify: {exc}") from None
