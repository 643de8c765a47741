"""The Postgres timer backend: claims due countdown timers with FOR UPDATE SKIP
LOCKED and records what they lead to. Any number of workers may run; a timer is
held by one of them at a time, and the ledger's fixed event ids make a decision
taken twice count once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from events.appender import Appender
from events.connector import Database, Row, Session
from events.errors import HookledgerError, Unavailable
from events.model import NewEvent
from events.queries import load
from events.retry import DATABASE_RETRY_CAP, Backoff
from events.wakeup import Wakeup
from projections.projectors import fold_streams
from scheduler.countdown import on_timer
from scheduler.errors import NotDueYet

log = logging.getLogger(__name__)

QUERIES = load(Path(__file__).with_name("queries.sql"))
CHANNEL = "hookledger_timers"


class PostgresTimers:
    """Fires due timers; sleeps until the next one is due, a NOTIFY, or the poll."""

    def __init__(
        self,
        db: Database,
        appender: Appender,
        *,
        batch_size: int = 500,
        poll_interval: float = 5.0,
        lag: float = 0.0,
    ) -> None:
        self._db = db
        # Beside Cloud Tasks this loop is the reconciler: it only takes timers
        # overdue by more than ``lag`` seconds, whose task was lost or never made.
        self._lag_seconds = lag
        self._appender = appender
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = Wakeup(db, CHANNEL)
        self.fired = 0

    async def run(self) -> None:
        """Run until cancelled."""
        await run_batches("timers", self._wakeup, self.run_once, self._batch_size,
                          self._sleep, self._poll_interval)  # fmt: skip

    async def run_once(self) -> int:
        """Claim one batch of due timers and decide them; returns how many."""
        async with self._db.transaction() as session:
            rows = await session.fetch_all(
                QUERIES["claim_timers"], (self._lag_seconds, self._batch_size)
            )
            await decide_due(session, self._appender, rows)
        self.fired += len(rows)
        return len(rows)

    async def _sleep(self) -> None:
        """Until the next timer is due, a NOTIFY (a new timer), or the poll interval."""
        timeout = self._poll_interval
        try:
            row = await self._db.fetch_one(QUERIES["next_timer_in"], (self._lag_seconds,))
        except Unavailable:
            row = None
        if row and row[0] is not None:
            timeout = min(timeout, max(row[0], 0.0))
        await self._wakeup.wait(timeout)


async def run_batches(
    name: str,
    wakeup: Wakeup,
    run_once: Callable[[], Awaitable[int]],
    batch_size: int,
    idle: Callable[[], Awaitable[None]],
    poll_interval: float,
) -> None:
    """Run ``run_once`` batch after batch until cancelled; after a short batch
    wait in ``idle``, after a failure for ``poll_interval``."""
    backoff = Backoff(name, poll_interval, max(poll_interval, DATABASE_RETRY_CAP))
    try:
        while True:
            await wakeup.listen()
            try:
                done = await run_once()
            except Unavailable as exc:
                log.warning("cannot reach the database", extra={"job": name, "error": exc.detail})
                await backoff.wait()
                continue
            except HookledgerError as exc:
                log.error("a batch failed", extra={"job": name, "error": exc.detail})
                await backoff.wait()
                continue
            backoff.reset()
            if done < batch_size:
                await idle()
    finally:
        await wakeup.close()


async def decide_due(session: Session, appender: Appender, rows: Sequence[Row]) -> list[str]:
    """Decide the due timers ``rows`` (order id, timer, due time, now) that the
    caller's transaction holds locked: refold their orders, append what they
    lead to, and delete or move the timer rows. Returns the decisions' types.

    The Postgres worker and the Cloud Tasks endpoint both come here, so a timer
    is decided the same way whichever fires it.
    """
    if not rows:
        return []
    now = rows[0][3]
    streams = sorted({f"order-{r[0]}" for r in rows})
    # Only the expire rows this transaction holds are moved: touching another row
    # would wait on whoever holds it (the countdowns projection rewriting the
    # order's timers) while holding rows it waits for, a deadlock. An expire row
    # not claimed here is the projection's to write.
    claimed_expiry = {r[0] for r in rows if r[1] == "expire"}
    decided: list[list[NewEvent]] = []
    moved: dict[str, object] = {}
    for state in await fold_streams(session, streams):
        decision = on_timer(state, now)
        if decision.events:
            decided.append(decision.events)
        expires_at = decision.expires_at
        if expires_at is not None and expires_at > now and state.order_id in claimed_expiry:
            moved[state.order_id] = expires_at
    await asyncio.gather(*(appender.append_many(d) for d in decided))
    for events in decided:
        log.info("timer fired", extra={"stream": events[0].stream,
                                       "decisions": [e.type for e in events]})  # fmt: skip
    fired = [(r[0], r[1]) for r in rows if not (r[1] == "expire" and r[0] in moved)]
    if fired:
        await session.execute(
            QUERIES["delete_fired_timers"], [[f[0] for f in fired], [f[1] for f in fired]]
        )
    if moved:
        await session.execute(QUERIES["move_expiry"], [list(moved), list(moved.values())])
    return [e.type for events in decided for e in events]


async def fire_order(
    db: Database, appender: Appender, order_id: str, timer: str, due_at: datetime
) -> str:
    """Decide one order's due timers for the task of its timer row (``timer`` due
    at ``due_at``). Returns ``fired``, ``gone`` (fired, satisfied or cancelled
    already: a duplicate or late task) or ``moved`` (the timer is due later now;
    another task stands for it). NotDueYet when the task came early."""
    async with db.transaction() as session:
        current = await session.fetch_one(QUERIES["order_timer"], (order_id, timer))
        if current is None:
            return "gone"
        current_due, is_due = current
        if not is_due:
            if current_due == due_at:
                raise NotDueYet(f"the timer is due at {current_due.isoformat()}")
            return "moved"
        rows = await session.fetch_all(QUERIES["claim_order_timers"], (order_id,))
        await decide_due(session, appender, rows)
    return "fired" if rows else "gone"
