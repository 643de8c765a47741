"""Ledger events for the exporter's tests, and reads of what was exported."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from google.cloud import bigquery

from events.appender import write
from events.connector import Database
from events.model import NewEvent
from exporter.bigquery import BigQueryConfig


def lifecycle_event(
    provider: str,
    type_: str,
    order_id: str | None,
    body: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> NewEvent:
    raw = json.dumps(body if body is not None else {"order_id": order_id}).encode()
    return NewEvent(
        provider=provider,
        event_id=f"{type_}:{order_id}:{uuid.uuid4().hex[:6]}",
        stream=f"order-{order_id}" if order_id else f"{provider}-{uuid.uuid4().hex[:8]}",
        type=type_,
        payload_json=raw,
        raw=raw,
        occurred_at=occurred_at,
        metadata={"correlation_id": "test"},
    )


def order_events(count: int, tag: str = "") -> list[NewEvent]:
    """``count`` events: orders with an e-mail, and Veriff decisions with a person."""
    tag = tag or uuid.uuid4().hex[:6]
    events = []
    for n in range(count):
        order = f"{tag}-{n // 2}"
        if n % 2 == 0:
            body: dict[str, Any] = {"orderId": order, "customerEmail": f"c{n}@example.com"}
            events.append(lifecycle_event("post-purchase", "order.created", order, body))
        else:
            body = {
                "status": "success",
                "verification": {
                    "id": f"s-{order}",
                    "status": "approved",
                    "vendorData": order,
                    "person": {"firstName": "SAMPLE", "lastName": "PERSON"},
                    "document": {"number": "K0000000"},
                },
            }
            events.append(lifecycle_event("veriff", "verification.approved", order, body))
    return events


async def append(db: Database, events: list[NewEvent]) -> list[int]:
    """Append and return the positions."""
    return [outcome.position for outcome in await write(db, events)]


def bigquery_rows(
    client: bigquery.Client, config: BigQueryConfig, select: str = "*", where: str = "TRUE"
) -> list[dict[str, Any]]:
    """Rows of the exported table, by position."""
    sql = f"SELECT {select} FROM `{config.table_id}` WHERE {where} ORDER BY position"  # noqa: S608
    return [dict(row) for row in client.query(sql).result(timeout=30)]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    """Poll ``check`` until it holds (an exporter's progress shows only in its effects)."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
