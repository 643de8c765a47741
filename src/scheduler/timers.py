"""The Postgres timer backend: claims due countdown timers with FOR UPDATE SKIP
LOCKED and records what they lead to. Any number of workers may run; a timer is
held by one of them at a time, and the ledger's fixed event ids make a decision
taken twice count once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from events.appender import Appender
from events.connector import Database
from events.errors import HookledgerError, Unavailable
from events.model import NewEvent
from events.queries import load
from events.wakeup import Wakeup
from projections.projectors import fold_streams
from scheduler.countdown import on_timer

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
    ) -> None:
        self._db = db
        self._appender = appender
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = Wakeup(db, CHANNEL)
        self.fired = 0

    async def run(self) -> None:
        """Run until cancelled."""
        try:
            while True:
                await self._wakeup.listen()
                try:
                    claimed = await self.run_once()
                except Unavailable as exc:
                    log.warning("timers cannot reach the database", extra={"error": exc.detail})
                    await asyncio.sleep(self._poll_interval)
                    continue
                except HookledgerError as exc:
                    log.error("timers failed on a batch", extra={"error": exc.detail})
                    await asyncio.sleep(self._poll_interval)
                    continue
                if claimed < self._batch_size:
                    await self._sleep()
        finally:
            await self._wakeup.close()

    async def run_once(self) -> int:
        """Claim one batch of due timers and decide them; returns how many."""
        async with self._db.transaction() as session:
            rows = await session.fetch_all(QUERIES["claim_timers"], (self._batch_size,))
            if not rows:
                return 0
            now = rows[0][3]
            streams = sorted({f"order-{r[0]}" for r in rows})
            decided: list[list[NewEvent]] = []
            moved: dict[str, object] = {}
            for state in await fold_streams(session, streams):
                decision = on_timer(state, now)
                if decision.events:
                    decided.append(decision.events)
                if decision.expires_at is not None and decision.expires_at > now:
                    moved[state.order_id] = decision.expires_at
            await asyncio.gather(*(self._appender.append_many(d) for d in decided))
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
        self.fired += len(rows)
        return len(rows)

    async def _sleep(self) -> None:
        """Until the next timer is due, a NOTIFY (a new timer), or the poll interval."""
        timeout = self._poll_interval
        try:
            row = await self._db.fetch_one(QUERIES["next_timer_in"])
        except Unavailable:
            row = None
        if row and row[0] is not None:
            timeout = min(timeout, max(row[0], 0.0))
        await self._wakeup.wait(timeout)
