"""Leadership of a named consumer across processes.

A lease is a session-level advisory lock. All the leases of a process are held on
one connection (``Database.shared``): a standby process asking once a second per
consumer opens no connection at all, and a lease is released when its holder lets
go or when that connection ends, so a consumer whose process died is taken over by
the next process that asks. The lease only keeps two runners from doing the same
work; correctness comes from the checkpoint check (events.checkpoints), which holds
even if two leases ever overlapped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

from events.connector import Connection, Database
from events.errors import CheckpointMoved, DatabaseUnavailable, HookledgerError, Unavailable
from events.queries import QUERIES
from events.retry import DATABASE_RETRY_CAP, Backoff

log = logging.getLogger(__name__)

# Advisory locks are re-entrant within a session: the names this process holds on
# each shared connection keep two runners of one process from both "taking" a name.
_held: WeakKeyDictionary[Connection, set[str]] = WeakKeyDictionary()

# The slowest retry of leased work that failed (a refusal that needs someone to act).
WORK_RETRY_CAP = 30.0


class Lease:
    """A held lease; ``held`` turns false once its connection is lost."""

    def __init__(self, name: str, conn: Connection) -> None:
        self.name = name
        self._conn = conn

    @property
    def held(self) -> bool:
        return not self._conn.broken and self.name in _held.get(self._conn, ())

    async def release(self) -> None:
        """Let go of the lease; the shared connection stays open for the others."""
        names = _held.get(self._conn, set())
        if self.name not in names:
            return
        names.discard(self.name)
        if self._conn.broken:
            return  # the lock went with the connection
        try:
            await self._conn.session().execute(QUERIES["release_lease"], (self.name,))
        except DatabaseUnavailable as exc:
            log.warning(
                "lease lost while releasing it", extra={"lease": self.name, "error": exc.detail}
            )


async def try_lease(db: Database, name: str) -> Lease | None:
    """The lease of ``name`` if no other runner holds it, else None."""
    conn = await db.shared()
    names = _held.setdefault(conn, set())
    if name in names:
        return None
    names.add(name)  # before the query: a concurrent ask in this process waits out
    try:
        row = await conn.session().fetch_one(QUERIES["try_lease"], (name,))
    except BaseException:
        names.discard(name)
        raise
    if not (row and row[0]):
        names.discard(name)
        return None
    return Lease(name, conn)


@asynccontextmanager
async def leased(db: Database, name: str) -> AsyncIterator[Lease | None]:
    """Hold ``name``'s lease for the block if it is free; yields None if not."""
    lease = await try_lease(db, name)
    try:
        yield lease
    finally:
        if lease is not None:
            await lease.release()


async def run_while_leased(
    db: Database,
    name: str,
    work: Callable[[Lease], Awaitable[None]],
    *,
    retry_interval: float,
    context: Callable[[], dict[str, Any]] = dict,
) -> None:
    """Until cancelled: whenever ``name``'s lease can be had, hold it and run
    ``work``; when ``work`` returns or fails, let go and ask again after
    ``retry_interval``. Any number of processes may run this for one name: one
    works, the others stand by. ``context`` adds fields to the failure logs."""
    # The database away: ask again soon after it is back. Work refused: ever slower.
    unreachable = Backoff(name, retry_interval, max(retry_interval, DATABASE_RETRY_CAP))
    refused = Backoff(name, retry_interval, max(retry_interval, WORK_RETRY_CAP))
    while True:
        failed: Backoff | None = None
        try:
            lease = await try_lease(db, name)
        except Unavailable as exc:
            log.warning("cannot ask for a lease", extra={"lease": name, "error": exc.detail})
            lease, failed = None, unreachable
        if lease is not None:
            try:
                await work(lease)
            except (Unavailable, CheckpointMoved) as exc:
                # A lost database, or a checkpoint moved under the work (another
                # runner, a destination made anew): start again from the checkpoint.
                log.warning(
                    "leased work restarts", extra={"lease": name, **context(), "error": exc.detail}
                )
                failed = unreachable
            except HookledgerError as exc:
                # Refused work will be refused again until someone acts: say so, and
                # retry ever more slowly rather than skip anything.
                log.error(
                    "leased work failed", extra={"lease": name, **context(), "error": exc.detail}
                )
                failed = refused
            finally:
                await lease.release()
        if failed is not None:
            await failed.wait()
        else:
            # A standby's ask, or work that ended by itself: ask again at the pace.
            unreachable.reset()
            refused.reset()
            await asyncio.sleep(retry_interval)
