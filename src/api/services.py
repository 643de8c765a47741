"""What the routes need, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from api.metrics import Metrics
from api.providers.base import Adapter
from events.appender import Appender
from events.connector import Database


@dataclass
class Services:
    db: Database
    appender: Appender
    providers: dict[str, Adapter]
    metrics: Metrics
    version: str
    safe_mode: bool
    max_body_bytes: int
    read_tokens: tuple[str, ...] = ()
    # An order's projected state (None when unknown), from the composition root.
    order_status: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
