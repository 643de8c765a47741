"""The stream cache: the consumers of a process read each order stream once,
and each still gets every event up to its batch, less what it set aside."""

from __future__ import annotations

import asyncio

from events.appender import write
from events.connector import Database
from events.model import NewEvent
from events.quarantine import set_aside
from projections.fold import OrderState
from projections.projectors import fold_streams
from projections.stream_cache import StreamCache
from tests.factories import new_event


def order(order_id: str, n: int = 0) -> NewEvent:
    return new_event(f"order-{order_id}", provider="post-purchase", type="order.created",
                     body={"orderId": order_id, "orderTotal": 10 + n})  # fmt: skip


async def head(db: Database) -> int:
    row = await db.fetch_one("SELECT max(position) FROM events")
    return int(row[0]) if row else 0


async def test_consumers_reading_the_same_streams_at_once_read_them_once(db: Database) -> None:
    await write(db, [order("a"), order("b")])
    cache = StreamCache()
    upto = await head(db)

    async def consumer(name: str) -> list[OrderState]:
        async with db.transaction() as session:
            return [f.state for f in await cache.read(session, ["order-a", "order-b"], name, upto)]

    results = await asyncio.gather(*(consumer(f"c{n}") for n in range(4)))
    assert cache.reads == 8 and cache.hits == 6  # one consumer read, three waited for it
    async with db.transaction() as session:
        expected = await fold_streams(session, ["order-a", "order-b"])
    assert all(states == expected for states in results)


async def test_a_consumer_past_the_cached_head_reads_the_stream_again(db: Database) -> None:
    await write(db, [order("a")])
    cache = StreamCache()
    async with db.transaction() as session:
        first = await cache.read(session, ["order-a"], "c", await head(db))
    await write(db, [new_event("order-a", provider="veriff", type="verification.approved",
                               body={"verification": {"id": "s", "status": "approved",
                                                      "vendorData": "a"}})])  # fmt: skip
    async with db.transaction() as session:
        again = await cache.read(session, ["order-a"], "c", await head(db))
    assert len(first[0].events) == 1 and len(again[0].events) == 2
    assert again[0].state.verification is not None


async def test_events_a_consumer_set_aside_are_left_out_for_it_alone(db: Database) -> None:
    await write(db, [order("a"), order("a", 1)])
    cache = StreamCache()
    upto = await head(db)
    async with db.transaction() as session:
        await set_aside(session, "fussy", upto, "e", "cannot read it")
        fussy = await cache.read(session, ["order-a"], "fussy", upto)
        other = await cache.read(session, ["order-a"], "other", upto)
    assert [e.position for e in fussy[0].events] == [upto - 1]
    assert [e.position for e in other[0].events] == [upto - 1, upto]
    async with db.transaction() as session:
        assert [f.state for f in fussy] == await fold_streams(session, ["order-a"], "fussy")
