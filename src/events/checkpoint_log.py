"""Signed checkpoints of the ledger's tree: signing the current tree head and
recording it (migration 0011), and reading recorded ones back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events import tree
from events.checkpoint_note import Checkpoint, checkpoint_text, fingerprint, signed_note
from events.connector import Database, Session
from events.queries import QUERIES


class Signer(Protocol):
    """An Ed25519 key that signs without necessarily handing itself out (a local
    key, or one in Cloud KMS)."""

    @property
    def public_key(self) -> Ed25519PublicKey: ...

    async def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...


class SignedCheckpoint(msgspec.Struct, frozen=True):
    """A recorded checkpoint: the tree of ``size`` leaves has head ``root``."""

    size: int
    root: bytes
    origin: str
    note: str
    key_fingerprint: str
    signed_at: datetime


def _from_row(row: Any) -> SignedCheckpoint:
    size, root, origin, note, key, signed_at = row
    return SignedCheckpoint(int(size), bytes(root), origin, note, key, signed_at)


async def sign_checkpoint(
    db: Database, signer: Signer, origin: str, size: int | None = None
) -> tuple[SignedCheckpoint, bool]:
    """Sign the stored tree's head (at ``size``, default all of it) and record it.
    Returns the checkpoint and whether it is new (not recorded before)."""
    if size is None:
        size = await tree.tree_size(db)
    known = await checkpoint_at(db, size)
    if known is not None:
        return known, False
    root = await tree.tree_head(db, size)
    text = checkpoint_text(Checkpoint(origin=origin, size=size, root=root))
    note = signed_note(text, origin, signer.public_key, await signer.sign(text.encode()))
    key = fingerprint(signer.public_key)
    row = await db.fetch_one(QUERIES["record_checkpoint"], (size, root, origin, note, key))
    if row is None:  # another process signed this size first: theirs is the record
        recorded = await checkpoint_at(db, size)
        assert recorded is not None
        return recorded, False
    return SignedCheckpoint(size, root, origin, note, key, row[0]), True


async def latest_checkpoint(db: Database) -> SignedCheckpoint | None:
    """The checkpoint of the largest tree signed so far."""
    row = await db.fetch_one(QUERIES["latest_checkpoint"])
    return _from_row(row) if row else None


async def checkpoint_at(db: Database, size: int) -> SignedCheckpoint | None:
    """The checkpoint of the tree of ``size`` leaves, if one was signed."""
    row = await db.fetch_one(QUERIES["checkpoint_at"], (size,))
    return _from_row(row) if row else None


async def all_checkpoints(db: Database | Session) -> list[SignedCheckpoint]:
    """Every recorded checkpoint, smallest tree first."""
    return [_from_row(r) for r in await db.fetch_all(QUERIES["all_checkpoints"])]
