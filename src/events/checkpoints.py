"""Consumers' positions in the ledger, advanced in the same transaction as their
effects."""

from __future__ import annotations

import msgspec

from events.connector import Database, Session
from events.errors import CheckpointMoved
from events.queries import QUERIES


class ConsumerLag(msgspec.Struct, frozen=True):
    """How far one consumer is behind the ledger's head."""

    name: str
    position: int
    events: int
    seconds: float


async def lock_checkpoint(session: Session, name: str, expected: int | None = None) -> int:
    """Lock a consumer's row for this transaction and return its position.

    With ``expected``, raise CheckpointMoved if another runner advanced it since:
    the batch in hand was read from a stale position and must not be applied.
    """
    await session.execute(QUERIES["ensure_checkpoint"], (name,))
    row = await session.fetch_one(QUERIES["lock_checkpoint"], (name,))
    position = int(row[0]) if row else 0
    if expected is not None and position != expected:
        raise CheckpointMoved(f"{name} is at {position}, not {expected}")
    return position


async def advance_checkpoint(session: Session, name: str, position: int) -> None:
    """Set a consumer's position (its row locked by ``lock_checkpoint``)."""
    await session.execute(QUERIES["advance_checkpoint"], (position, name))


async def read_checkpoint(db: Database, name: str) -> int:
    """A consumer's position; 0 before its first batch."""
    row = await db.fetch_one(QUERIES["read_checkpoint"], (name,))
    return int(row[0]) if row else 0


async def reset_checkpoint(session: Session, name: str, position: int) -> None:
    """Put a consumer at ``position`` (a rebuild that starts over, or a swap)."""
    await session.execute(QUERIES["reset_checkpoint"], (name, position))


async def consumer_lags(db: Database) -> list[ConsumerLag]:
    """Every consumer's distance from the ledger's head, in events and seconds."""
    rows = await db.fetch_all(QUERIES["consumer_lags"])
    return [ConsumerLag(name=r[0], position=r[1], events=r[2], seconds=r[3]) for r in rows]


async def commit_without_waiting(session: Session) -> None:
    """Let this transaction commit without waiting for the disk. For a consumer
    of derived data only: a crash may lose its last batches with the checkpoint
    that counted them (the same transaction), and they are applied again; the
    WAL is written in order, so a later durable commit takes them along."""
    await session.execute(QUERIES["commit_without_waiting"])
