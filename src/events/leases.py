"""Leadership of a named consumer across processes.

A lease is a session-level advisory lock held on a connection of its own: it is
released when the holder lets go or when its connection ends, so a consumer whose
process died is taken over by the next process that asks. The lease only keeps
two runners from doing the same work; correctness comes from the checkpoint
check (events.checkpoints), which holds even if two leases ever overlapped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from events.connector import Connection, Database
from events.errors import CheckpointMoved, DatabaseUnavailable, HookledgerError, Unavailable
from events.queries import QUERIES

log = logging.getLogger(__name__)


class Lease:
    """A held lease; ``held`` turns false once its connection is lost."""

    def __init__(self, name: str, conn: Connection) -> None:
        self.name = name
        self._conn = conn

    @property
    def held(self) -> bool:
        return not self._conn.broken

    async def release(self) -> None:
        """Let go of the lease (closing its connection would too)."""
        try:
            if self.held:
                await self._conn.session().execute(QUERIES["release_lease"], (self.name,))
        except DatabaseUnavailable as exc:
            log.warning(
                "lease lost while releasing it", extra={"lease": self.name, "error": exc.detail}
            )
        finally:
            await self._conn.close()


async def try_lease(db: Database, name: str) -> Lease | None:
    """The lease of ``name`` if no other process holds it, else None."""
    conn = await db.connect(autocommit=True)
    try:
        row = await conn.session().fetch_one(QUERIES["try_lease"], (name,))
    except BaseException:
        await conn.close()
        raise
    if not (row and row[0]):
        await conn.close()
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
    while True:
        try:
            lease = await try_lease(db, name)
        except Unavailable as exc:
            log.warning("cannot ask for a lease", extra={"lease": name, "error": exc.detail})
            lease = None
        if lease is not None:
            try:
                await work(lease)
            except (Unavailable, CheckpointMoved) as exc:
                # A lost database, or a checkpoint moved under the work (another
                # runner, a destination made anew): start again from the checkpoint.
                log.warning(
                    "leased work restarts", extra={"lease": name, **context(), "error": exc.detail}
                )
            except HookledgerError as exc:
                # Refused work will be refused again until someone acts: say so, and
                # retry slowly rather than skip anything.
                log.error(
                    "leased work failed", extra={"lease": name, **context(), "error": exc.detail}
                )
            finally:
                await lease.release()
        await asyncio.sleep(retry_interval)
