"""The console's jobs: a retry of many dead letters, a replay of every
projection. The web process only queues them (rows of ``console_jobs``); the
background process runs them (the worker on Cloud Run, whose CPU is not
throttled between requests). One runner at a time, by lease, takes the oldest
unfinished job; one whose runner died is taken again from the start, which
both kinds allow (a retry skips what is no longer dead, a replay rebuilds)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from events.appender import write
from events.chain import format_time
from events.connector import Database
from events.errors import HookledgerError, Unavailable
from events.leases import Lease, run_while_leased
from events.model import ORDER_STREAM_PREFIX, NewEvent
from events.queries import load
from projections.projectors import PROJECTIONS
from projections.replay import replay
from scheduler.actions.queries import QUERIES as ACTIONS

log = logging.getLogger(__name__)
QUERIES = load(Path(__file__).with_name("console.sql"))
LEASE = "console-jobs"
# How often a runner looks for a queued job (and a standby for the lease).
POLL_SECONDS = 1.0
# How often a retry job writes how far it got.
PROGRESS_EVERY = 20


async def retry_dead_letter(db: Database, key: str, who: str, address: str) -> bool:
    """Queue a dead action again and record who did it, from where, in the
    order's stream, in one transaction; False if it is not dead."""
    async with db.transaction() as session:
        row = await session.fetch_one(ACTIONS["requeue_dead"], (key,))
        if row is None:
            return False
        order_id, kind, retries, error = row
        body = {"action": "retry", "key": key, "kind": kind, "retry": retries,
                "last_error": error, "by": who, "from": address,
                "at": format_time(datetime.now(UTC))}  # fmt: skip
        raw = msgspec.json.encode(body)
        event = NewEvent(
            provider="hookledger",
            event_id=f"operator.retry:{key}:{retries}",
            stream=ORDER_STREAM_PREFIX + order_id,
            type="operator.retried",
            payload_json=raw,
            raw=raw,
            metadata={"by": who, "from": address},
        )
        await write(session, [event])
        await session.execute(ACTIONS["notify_enqueued"])
    log.info("operator retried a dead letter",
             extra={"key": key[:200], "by": who, "from": address})  # fmt: skip
    return True


class ConsoleJobs:
    """Runs the queued console jobs of one database, one after another."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def run(self) -> None:
        """Until cancelled: hold the lease when free and run what is queued."""
        await run_while_leased(self._db, LEASE, self._work, retry_interval=POLL_SECONDS)

    async def _work(self, lease: Lease) -> None:
        while lease.held and await self.run_next():
            pass

    async def run_next(self) -> bool:
        """Run the oldest unfinished job to its end; False if none waits."""
        row = await self._db.fetch_one(QUERIES["next_job"])
        if row is None:
            return False
        job, kind, params, by = int(row[0]), row[1], row[2] or {}, str(row[3])
        address = str(params.get("from") or "unknown")
        if kind == "retry":
            await self._retry_each(job, [str(k) for k in params.get("keys") or []], by, address)
        elif kind == "replay":
            await self._replay(job)
        else:  # not one this version knows: say so rather than wait for ever
            log.error("console job of an unknown kind", extra={"job": job, "kind": kind})
            await self._db.fetch_all(QUERIES["job_progress"], (0, 1, True, job))
        return True

    async def _retry_each(self, job: int, keys: list[str], who: str, address: str) -> None:
        done = failed = 0
        for n, key in enumerate(keys, start=1):
            try:
                if await retry_dead_letter(self._db, key, who, address):
                    done += 1
                else:
                    failed += 1  # retried meanwhile by someone else, or not dead any more
            except Unavailable:
                raise  # the database is away: the job is taken again once it is back
            except HookledgerError as exc:
                failed += 1
                log.warning("a dead letter could not be retried",
                            extra={"key": key[:200], "error": exc.detail})  # fmt: skip
            if n % PROGRESS_EVERY == 0 and n < len(keys):
                await self._db.fetch_all(QUERIES["job_progress"], (done, failed, False, job))
        await self._db.fetch_all(QUERIES["job_progress"], (done, failed, True, job))

    async def _replay(self, job: int) -> None:
        progress = _JobProgress(self._db, job)
        try:
            # One partition, in this process: beside the live consumers.
            report = await replay(self._db, list(PROJECTIONS.values()), progress, parts=1)
        except Unavailable:
            raise
        except HookledgerError as exc:
            log.error("console replay failed", extra={"job": job, "error": exc.detail})
            await self._db.fetch_all(QUERIES["rename_job"],
                                     (f"replay of every projection: failed: {exc.detail}"[:500],
                                      job))  # fmt: skip
            await progress.finish(failed=True)
            return
        what = (f"replay of every projection: {report.events:,} events, {report.orders:,} "
                f"orders in {report.seconds:.1f} s")  # fmt: skip
        await self._db.fetch_all(QUERIES["rename_job"], (what, job))
        await progress.finish()


class _JobProgress:
    """A replay's progress, written to its console job now and then."""

    def __init__(self, db: Database, job: int) -> None:
        self._db = db
        self._job = job
        self._done = 0
        self._written = 0.0
        self._pending: set[asyncio.Task[Any]] = set()

    def advance(self, count: int) -> None:
        self._done += count
        now = time.monotonic()
        if now - self._written >= 1.0:  # at most once a second
            self._written = now
            task = asyncio.create_task(self._write(False))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def finish(self, *, failed: bool = False) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._write(True, failed=failed)

    async def _write(self, finished: bool, *, failed: bool = False) -> None:
        try:
            params = (self._done, 1 if failed else 0, finished, self._job)
            await self._db.fetch_all(QUERIES["job_progress"], params)
        except HookledgerError as exc:  # only the page's figure is late
            log.warning("console job progress not written",
                        extra={"job": self._job, "error": exc.detail})  # fmt: skip
