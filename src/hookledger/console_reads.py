"""What the console reads, for the app (api.console) that may not import the
projections or personal data itself: the session key, the overview's counts,
orders by id, e-mail (keyed hash) or status, an order's history."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from events.appender import write
from events.chain import format_time, verify_stream
from events.checkpoints import ConsumerLag, consumer_lags
from events.connector import Database
from events.errors import ChainBroken
from events.evidence import event_view
from events.model import ORDER_STREAM_PREFIX, NewEvent
from events.queries import load
from events.store import read_stream
from hookledger.console_jobs import retry_dead_letter
from personal.erasure import subjects_for_email
from personal.lookup import lookup_key
from projections.projectors import PROJECTIONS
from scheduler.actions.queue import dead_letters
from scheduler.cloudtasks import dead_tasks

log = logging.getLogger(__name__)
QUERIES = load(Path(__file__).with_name("console.sql"))
PAGE = 50
JOB_KEYS = ("id", "what", "by", "total", "done", "failed", "started_at", "finished_at", "picked")
LINK_SECONDS = 15 * 60


class ConsoleReads:
    """The console's reads of one database (the session key read once)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._key: bytes | None = None
        self._lookup: bytes | None = None

    async def session_key(self) -> bytes:
        """The installation's console key, made on first use."""
        if self._key is None:
            await self._db.fetch_all(QUERIES["make_key"],
                                     ("console", secrets.token_bytes(32)))  # fmt: skip
            row = await self._db.fetch_one(QUERIES["read_key"], ("console",))
            assert row is not None  # made just above
            self._key = bytes(row[0])
        return self._key

    async def make_link(self, lifetime_seconds: int = LINK_SECONDS) -> str:
        """A one-time sign-in token for the local operator (only its digest kept)."""
        token = secrets.token_urlsafe(24)
        await self._db.fetch_all(QUERIES["make_link"], (token, lifetime_seconds))
        return token

    async def redeem_link(self, token: str) -> bool:
        """Whether ``token`` is a link's, unused and unexpired (it is used now)."""
        return bool(await self._db.fetch_all(QUERIES["redeem_link"], (token,)))

    async def overview(self) -> dict[str, Any]:
        row = await self._db.fetch_one(QUERIES["overview"])
        due, dead, events, checkpoint = row if row else (0, 0, 0, None)
        deliveries = [
            {"provider": r[0], "outcome": r[1], "hour": int(r[2]), "day": int(r[3])}
            for r in await self._db.fetch_all(QUERIES["deliveries_summary"])
        ]
        lags = await consumer_lags(self._db)
        # The one furthest behind says whether anything follows the ledger late.
        behind = max(lags, key=lambda c: (c.events, c.seconds or 0.0), default=None)
        slowest = _lag(behind) if behind is not None else None
        return {"due_next_hour": int(due), "dead_letters": int(dead), "events": int(events),
                "checkpoint": checkpoint, "deliveries": deliveries,
                "slowest": slowest}  # fmt: skip

    async def orders(
        self, query: str, status: str, countdown: str, after: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of orders: ``query`` an e-mail address, or the start of an
        order id (the order of exactly that id first)."""
        ids: list[str] | None = None
        start, below = "", None
        by_email = "@" in query
        if by_email:
            if self._lookup is None:
                self._lookup = await lookup_key(self._db)
            subjects = await subjects_for_email(self._db, query, self._lookup)
            ids = [s.removeprefix(ORDER_STREAM_PREFIX) for s in subjects]
        elif query:
            start, below = query, successor(query)
        params = (ids, ids, start, below, below, status, status, countdown, countdown, after, PAGE)
        rows = await self._db.fetch_all(QUERIES["orders_page"], params)
        return [
            {"order_id": r[0], "created_at": r[1], "status": r[2], "countdown": r[3],
             "total": r[4], "currency": r[5]}
            for r in rows
        ], by_email  # fmt: skip

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The actions that gave up, and the Cloud Tasks that did (not
        retriable: the reconciler still fires their timers), oldest first."""
        actions = [(d, True) for d in await dead_letters(self._db)]
        tasks = [(d, False) for d in await dead_tasks(self._db)]
        return [
            {"key": d.key, "kind": d.kind, "order_id": d.order_id, "attempts": d.attempts,
             "retries": d.retries, "last_error": d.last_error,
             "updated_at": format_time(d.updated_at), "retriable": retriable}
            for d, retriable in sorted(actions + tasks, key=lambda x: (x[0].updated_at, x[0].key))
        ]  # fmt: skip

    async def retry(self, key: str, who: str, address: str) -> bool:
        """Queue a dead action again, recorded in the ledger (who, from where);
        False if it is not dead."""
        return await retry_dead_letter(self._db, key, who, address)

    async def retry_all(self, keys: list[str], kind: str, who: str, address: str) -> int:
        """Queue the retry of these dead letters (those of ``kind``, or all) for
        the background process, each recorded as ``retry`` records one; the job's id."""
        what = f"retry {len(keys)} dead letter{'s' if len(keys) != 1 else ''}" + (
            f" of kind {kind}" if kind else ""
        )
        params = msgspec.json.encode({"keys": keys, "from": address}).decode()
        row = await self._db.fetch_one(QUERIES["queue_job"],
                                       (what, who, len(keys), "retry", params))  # fmt: skip
        assert row is not None  # INSERT ... RETURNING
        return int(row[0])

    async def replays(self) -> dict[str, Any]:
        """Every consumer's position and lag (the projections, the policy, the
        tree, the exports) and the latest replays started here."""
        lags = await consumer_lags(self._db)
        rows = await self._db.fetch_all(QUERIES["recent_jobs"], ("replay",))
        return {
            "consumers": [_lag(c) for c in lags],
            "jobs": [dict(zip(JOB_KEYS, r, strict=True)) for r in rows],
        }  # fmt: skip

    async def start_replay(self, who: str, address: str) -> int:
        """Queue a rebuild of every projection (as `hookledger replay --all`)
        for the background process, recorded in the ledger first; the job's id."""
        head = await self._db.fetch_one(QUERIES["overview"])
        total = int(head[2]) if head else 0
        params = msgspec.json.encode({"from": address}).decode()
        row = await self._db.fetch_one(QUERIES["queue_job"], ("replay of every projection", who,
                                                              total, "replay", params))  # fmt: skip
        assert row is not None  # INSERT ... RETURNING
        job = int(row[0])
        raw = msgspec.json.encode({"action": "replay", "projections": sorted(PROJECTIONS),
                                   "job": job, "by": who, "from": address,
                                   "at": format_time(datetime.now(UTC))})  # fmt: skip
        await write(self._db, [NewEvent(provider="hookledger", event_id=f"operator.replay:{job}",
                                        stream="operators", type="operator.replayed",
                                        payload_json=raw, raw=raw,
                                        metadata={"by": who, "from": address})])  # fmt: skip
        return job

    async def job(self, job: int) -> dict[str, Any] | None:
        """A console job's progress."""
        row = await self._db.fetch_one(QUERIES["read_job"], (job,))
        if row is None:
            return None
        return dict(zip(JOB_KEYS, row, strict=True))

    async def add_counts(
        self,
        rejections: dict[tuple[int, str, str], int],
        deliveries: dict[tuple[int, str, str], int],
    ) -> None:
        """Add one process's tallies (refused signatures; deliveries by outcome)
        to the minutes'."""
        async with self._db.transaction() as session:
            for query, tally in (("add_rejections", rejections), ("add_deliveries", deliveries)):
                if tally:
                    keys = list(tally)
                    columns = ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                               [tally[k] for k in keys])  # fmt: skip
                    await session.execute(QUERIES[query], columns)

    async def trouble(self) -> dict[str, Any]:
        """Refused signatures grouped by provider, reason and hour; countdowns
        whose reminder or refund cannot go out."""
        rejections = await self._db.fetch_all(QUERIES["rejections_by_hour"])
        blocked = await self._db.fetch_all(QUERIES["blocked_countdowns"])
        return {
            "rejections": [{"provider": r[0], "reason": r[1], "hour": r[2], "count": int(r[3])}
                           for r in rejections],
            "blocked": [{"order_id": r[0], "kind": r[1], "state": r[2], "attempts": r[3],
                         "last_error": r[4], "countdown": r[5], "updated_at": r[6]}
                        for r in blocked],
        }  # fmt: skip

    async def operator_actions(self, before: int | None) -> list[dict[str, Any]]:
        """What operators did (retries, replays, erasures: who, from where,
        what), newest first, a page before position ``before``."""
        rows = await self._db.fetch_all(QUERIES["operator_actions"],
                                        (before or 2**63 - 1, PAGE))  # fmt: skip
        return [
            {"position": r[0], "stream": r[1], "type": r[2], "at": r[3], "by": r[4] or "-",
             "where": r[5] or "-", "what": _what(r[2], r[6]),
             "order_id": r[1].removeprefix(ORDER_STREAM_PREFIX)
             if r[1].startswith(ORDER_STREAM_PREFIX) else None}
            for r in rows
        ]  # fmt: skip

    async def history(self, order_id: str) -> tuple[list[dict[str, Any]], str]:
        """The order's events as the audit read shows them, and its chain's state
        (recomputed from the events read: `hookledger verify` also checks the
        stream's head, the tree and every held personal value)."""
        events = await read_stream(self._db, ORDER_STREAM_PREFIX + order_id)
        if not events:
            return [], "empty"
        try:
            verify_stream(events)
        except ChainBroken as exc:
            return [event_view(e) for e in events], f"BROKEN at version {exc.version}: {exc.reason}"
        return [event_view(e) for e in events], "intact"


def successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in
    byte (code point) order; None when there is none."""
    for cut in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[cut]) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates are not characters Postgres stores
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:cut] + chr(point)
    return None


def _lag(consumer: ConsumerLag) -> dict[str, Any]:
    """A consumer's position, how many events it has still to take, and how
    long the oldest of them has waited (seconds, to a tenth)."""
    seconds = round(consumer.seconds, 1) if consumer.seconds is not None else None
    return {"name": consumer.name, "position": consumer.position, "events": consumer.events,
            "seconds": seconds}  # fmt: skip


def _what(kind: str, payload: dict[str, Any]) -> str:
    """One line saying what an operator's event did."""
    if kind == "operator.retried":
        return f"retried {payload.get('kind')} {payload.get('key')} (retry {payload.get('retry')})"
    if kind == "operator.replayed":
        return f"replayed every projection (job {payload.get('job')})"
    classes = ", ".join(str(c) for c in payload.get("classes") or [])
    values, events = payload.get("values"), payload.get("events")
    reason = payload.get("reason")
    return (f"erased {values} personal value{'' if values == 1 else 's'} of {events}"
            f" event{'' if events == 1 else 's'} ({classes}); reason: {reason}")  # fmt: skip
