"""What the console reads, for the app (api.console) that may not import the
projections or personal data itself: the session key, the overview's counts,
orders by id, e-mail (keyed hash) or status, an order's history."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from events.connector import Database
from events.errors import ChainBroken
from events.evidence import event_view
from events.model import ORDER_STREAM_PREFIX
from events.queries import load
from events.store import read_stream, verify_chains
from personal.erasure import subjects_for_email

QUERIES = load(Path(__file__).with_name("console.sql"))
PAGE = 50


class ConsoleReads:
    """The console's reads of one database (the session key read once)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._key: bytes | None = None

    async def session_key(self) -> bytes:
        """The installation's console key, made on first use."""
        if self._key is None:
            await self._db.fetch_all(QUERIES["make_key"],
                                     ("console", secrets.token_bytes(32)))  # fmt: skip
            row = await self._db.fetch_one(QUERIES["read_key"], ("console",))
            assert row is not None  # made just above
            self._key = bytes(row[0])
        return self._key

    async def overview(self) -> dict[str, Any]:
        row = await self._db.fetch_one(QUERIES["overview"])
        due, dead, events, checkpoint = row if row else (0, 0, 0, None)
        return {"due_next_hour": int(due), "dead_letters": int(dead), "events": int(events),
                "checkpoint": checkpoint}  # fmt: skip

    async def orders(
        self, query: str, status: str, after: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of orders: ``query`` an order id or an e-mail address."""
        ids: list[str] | None = None
        by_email = "@" in query
        if by_email:
            subjects = await subjects_for_email(self._db, query)
            ids = [s.removeprefix(ORDER_STREAM_PREFIX) for s in subjects]
        elif query:
            ids = [query]
        rows = await self._db.fetch_all(QUERIES["orders_page"],
                                        (ids, ids, status, status, after, PAGE))  # fmt: skip
        return [
            {"order_id": r[0], "created_at": r[1], "status": r[2], "countdown": r[3],
             "total": r[4], "currency": r[5]}
            for r in rows
        ], by_email  # fmt: skip

    async def history(self, order_id: str) -> tuple[list[dict[str, Any]], str]:
        """The order's events as the audit read shows them, and its chain's state."""
        stream = ORDER_STREAM_PREFIX + order_id
        events = await read_stream(self._db, stream)
        if not events:
            return [], "empty"
        try:
            await verify_chains(self._db, stream)
        except ChainBroken as exc:
            return [event_view(e) for e in events], f"BROKEN at version {exc.version}: {exc.reason}"
        return [event_view(e) for e in events], "intact"
