"""Batches of ledger events in export form: the policy applied, the order id
derived, held as columns (what Parquet and the BigQuery rows are built from)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from events.connector import Database, Row
from events.model import ORDER_STREAM_PREFIX
from events.queries import load
from exporter.policy import Policy

QUERIES = load(Path(__file__).with_name("queries.sql"))


class ExportBatch(msgspec.Struct, frozen=True):
    """Consecutive events, one list per exported column, in position order."""

    position: list[int]
    provider: list[str]
    event_id: list[str]
    stream: list[str]
    stream_version: list[int]
    order_id: list[str | None]
    type: list[str]
    occurred_at: list[int | None]
    """Microseconds since 1970, UTC."""
    recorded_at: list[int]
    """Microseconds since 1970, UTC."""
    payload: list[str]
    """JSON text."""
    metadata: list[str]
    """JSON text."""

    def __len__(self) -> int:
        return len(self.position)

    @property
    def first_position(self) -> int:
        return self.position[0]

    @property
    def last_position(self) -> int:
        return self.position[-1]

    def columns(self) -> dict[str, list[Any]]:
        """Column name -> values, in the exported schema's order."""
        return {name: getattr(self, name) for name in self.__struct_fields__}


def build_batch(rows: Sequence[Row], policy: Policy) -> ExportBatch:
    """Rows of ``export_after`` in export form."""
    (position, provider, event_id, stream, version, type_, occurred_at, recorded_at,
     payload, metadata) = (list(column) for column in zip(*rows, strict=True))  # fmt: skip
    prefix, cut = ORDER_STREAM_PREFIX, len(ORDER_STREAM_PREFIX)
    return ExportBatch(
        position=position,
        provider=provider,
        event_id=event_id,
        stream=stream,
        stream_version=version,
        # The stream without its prefix, for an order's stream.
        order_id=[s[cut:] if s.startswith(prefix) else None for s in stream],
        type=type_,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        payload=[
            policy.apply_text(p, t, body)
            for p, t, body in zip(provider, type_, payload, strict=True)
        ],
        metadata=metadata,
    )


async def fetch_rows(db: Database, after: int, limit: int) -> list[Row]:
    """Up to ``limit`` ledger rows after ``after``, for ``build_batch``."""
    return await db.fetch_all(QUERIES["export_after"], (after, limit), binary=True)


# The ledger's records of an erasure (on request, by retention): the subject's
# rows exported before must be exported again without what was erased.
ERASURE_TYPES = frozenset({"subject.erased", "subject.expired"})


def erasures(batch: ExportBatch) -> list[tuple[str, int]]:
    """The (stream, position) of each erasure recorded in ``batch``."""
    return [
        (stream, position)
        for position, provider, type_, stream in zip(
            batch.position, batch.provider, batch.type, batch.stream, strict=True
        )
        if provider == "hookledger" and type_ in ERASURE_TYPES
    ]


async def read_erased(db: Database, stream: str, before: int, policy: Policy) -> ExportBatch | None:
    """The events of an erased subject before its erasure, in export form now."""
    rows = await db.fetch_all(QUERIES["export_stream"], (stream, before), binary=True)
    return await asyncio.to_thread(build_batch, rows, policy) if rows else None


async def read_batch(db: Database, after: int, limit: int, policy: Policy) -> ExportBatch | None:
    """Up to ``limit`` events after ``after`` in export form; None when there are none."""
    rows = await fetch_rows(db, after, limit)
    # In a thread: a large batch must not stall the event loop (it may serve webhooks).
    return await asyncio.to_thread(build_batch, rows, policy) if rows else None


async def count_after(db: Database, after: int) -> int:
    """How many events there are after ``after`` (a progress bar's total)."""
    row = await db.fetch_one(QUERIES["count_after"], (after,))
    return int(row[0]) if row else 0
