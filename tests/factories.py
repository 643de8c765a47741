"""Events made to order for ledger tests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from events.model import NewEvent


def new_event(
    stream: str = "order-1",
    event_id: str | None = None,
    provider: str = "test",
    type: str = "order.created",
    body: dict[str, Any] | None = None,
) -> NewEvent:
    raw = json.dumps(body if body is not None else {"n": uuid.uuid4().hex}).encode()
    return NewEvent(
        provider=provider,
        event_id=event_id or uuid.uuid4().hex,
        stream=stream,
        type=type,
        payload_json=raw,
        raw=raw,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        metadata={"correlation_id": "test"},
    )
