"""Leases: one connection per process holds them all, a standby asking again and
again opens none, and a name is held by one runner at a time."""

from __future__ import annotations

import asyncio

import pytest

from events.connector import Database
from events.errors import DatabaseUnavailable
from events.leases import Lease, try_lease


async def test_a_standby_asking_again_and_again_opens_no_new_connection(
    database_url: str,
) -> None:
    holder, standby = Database(database_url), Database(database_url)
    await holder.open()
    await standby.open()
    try:
        held = await try_lease(holder, "projection.orders")
        assert held is not None
        for _ in range(50):
            for name in ("projection.orders", "policy.countdown"):
                lease = await try_lease(standby, name)
                if lease is not None:
                    await lease.release()
        # Before: one new connection per ask (100 here); now one for the process.
        assert standby.opened == 1
        await held.release()
    finally:
        await holder.close()
        await standby.close()


async def test_every_lease_of_a_process_shares_one_connection(db: Database) -> None:
    names = [f"consumer-{i}" for i in range(6)]
    leases = [await try_lease(db, name) for name in names]
    assert all(lease is not None and lease.held for lease in leases)
    assert db.opened == 1
    for lease in leases:
        assert lease is not None
        await lease.release()
        assert not lease.held


async def test_two_runners_in_one_process_never_hold_one_name_together(db: Database) -> None:
    results = await asyncio.gather(*(try_lease(db, "recorder") for _ in range(10)))
    held = [lease for lease in results if lease is not None]
    assert len(held) == 1
    assert await try_lease(db, "recorder") is None
    await held[0].release()
    again = await try_lease(db, "recorder")
    assert again is not None
    await again.release()


async def test_a_lease_is_lost_with_its_connection_and_taken_by_another_process(
    db: Database, database_url: str
) -> None:
    other = Database(database_url)
    await other.open()
    try:
        lease = await try_lease(db, "recorder")
        assert lease is not None
        assert await try_lease(other, "recorder") is None
        await other.fetch_one(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
        )
        taken = await _eventually(other, "recorder")
        assert taken is not None
        # The old holder learns it at its next statement, then asks on a new connection.
        with pytest.raises(DatabaseUnavailable):
            await try_lease(db, "policy.countdown")
        assert not lease.held
        assert await try_lease(db, "recorder") is None
        assert db.opened == 2
        await lease.release()  # a lost lease lets go without a word
        await taken.release()
    finally:
        await other.close()


async def _eventually(db: Database, name: str) -> Lease | None:
    for _ in range(100):
        lease = await try_lease(db, name)
        if lease is not None:
            return lease
        await asyncio.sleep(0.05)
    return None
