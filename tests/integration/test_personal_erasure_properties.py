"""Erasure's guarantees as properties: any subset of subjects erased in any
order, between deliveries, leaves every chain verifying, the live projections
equal to a replay, and a second erasure changing nothing; an erasure racing
with deliveries for its own subject leaves nothing readable from before it."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from events.appender import Appender, write
from events.connector import Database
from events.store import read_stream, verify_chains
from personal.cutter import PersonalCutter
from personal.erasure import erase
from personal.policy import load_policy
from projections.projectors import PROJECTIONS
from projections.replay import replay
from projections.stream_cache import StreamCache
from tests.integration.test_personal_storage import decision_event, order_event
from tests.integration.test_projections import (
    EXAMPLES,
    SEEDS,
    apply_in_batches,
    order_events,
    snapshot,
)

CUTTER = PersonalCutter(load_policy())
STEPS = st.lists(st.one_of(st.just(-1), st.integers(0, 4)), min_size=1, max_size=8)


@EXAMPLES
@given(seed=SEEDS, steps=STEPS)
async def test_erasures_in_any_order_between_deliveries_keep_the_ledger_provable(
    db: Database, seed: int, steps: list[int]
) -> None:
    rng = random.Random(seed)
    orders = [f"{seed}-e{n}" for n in range(5)]
    events = [e for order in orders for e in order_events(order, rng)]
    rng.shuffle(events)
    chunks = [events[i : i + 4] for i in range(0, len(events), 4)]
    streams = StreamCache(3)
    erased: set[str] = set()
    for step in steps:  # -1: the next deliveries arrive; n: order n is erased
        if step < 0 and chunks:
            await write(db, chunks.pop(0), CUTTER)
        elif step >= 0:
            await erase(db, [f"order-{orders[step]}"], reason="asked", by="dpo", via="test")
            erased.add(orders[step])
        await apply_in_batches(db, [rng.randrange(1, 9)], streams)
    for chunk in chunks:
        await write(db, chunk, CUTTER)
    await apply_in_batches(db, [7], streams)

    await verify_chains(db)
    live = await snapshot(db)
    await replay(db, list(PROJECTIONS.values()), parts=1)
    assert await snapshot(db) == live

    for order in erased:  # nothing of theirs from before their last erasure is left
        stream = await read_stream(db, f"order-{order}")
        last = max((e.position for e in stream if e.type == "subject.erased"), default=0)
        kept = await db.fetch_all(
            "SELECT count(*) FROM personal_values WHERE subject = %s AND position < %s",
            (f"order-{order}", last),
        )
        assert kept[0][0] == 0
    heads = await db.fetch_all("SELECT stream, version FROM streams ORDER BY stream")
    for order in erased:
        again = await erase(db, [f"order-{order}"], reason="asked", by="dpo", via="test")
        assert all(d.event_id is None or d.values for d in again)
    await erase(db, [f"order-{o}" for o in erased], reason="asked", by="dpo", via="test")
    twice = await erase(db, [f"order-{o}" for o in erased], reason="asked", by="dpo", via="test")
    assert all(d.event_id is None for d in twice)
    if not erased:
        assert await db.fetch_all("SELECT stream, version FROM streams ORDER BY stream") == heads


async def test_an_erasure_racing_with_deliveries_leaves_nothing_from_before_it(
    db: Database,
) -> None:
    appender = Appender(db, cutter=CUTTER, max_batch=8)
    await appender.start()
    try:
        deliveries = [order_event("race") if n % 2 else decision_event("race") for n in range(60)]

        async def deliver() -> None:
            for event in deliveries:
                await appender.append(event)
                await asyncio.sleep(0)

        async def erase_midway() -> None:
            await asyncio.sleep(0.02)
            await erase(db, ["order-race"], reason="asked", by="dpo", via="test")

        await asyncio.gather(deliver(), erase_midway())
    finally:
        await appender.stop()

    stream = await read_stream(db, "order-race")
    erasure = next(e.position for e in stream if e.type == "subject.erased")
    before = [e for e in stream if e.position < erasure and e.personal]
    after = [e for e in stream if e.position > erasure and e.personal]
    assert before, "the erasure should have come after some deliveries"
    assert all(not e.held for e in before)
    assert all(e.held for e in after), "events after the erasure are kept as any other"
    await verify_chains(db)
