"""Projections over a real ledger: applied in batches of any size, in any arrival
order, they equal a rebuild; a rebuild swaps in while the runner keeps going."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.appender import write
from events.checkpoints import advance_checkpoint, lock_checkpoint, read_checkpoint
from events.connector import Database
from events.consumer import ConsumerRunner
from events.model import NewEvent
from events.store import read_after, read_heads_after
from projections.projectors import PROJECTIONS, ProjectionConsumer
from projections.replay import replay
from projections.stream_cache import StreamCache
from tests.factories import new_event

TABLES = {
    "orders": "SELECT order_id, created_at, total, currency, customer, status FROM orders",
    "verifications": "SELECT order_id, sessions, latest_decision, decided_at, submitted_at, "
    "attempts FROM verifications",
    "countdowns": "SELECT order_id, started_at, due_at, expires_at, reminders, reminded, state, "
    "closed_at FROM countdowns",
    "countdown_timers": "SELECT order_id, timer, due_at FROM countdown_timers",
}
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def order_events(order: str, rng: random.Random) -> list[NewEvent]:
    """An order's events from every source the folds read, some of them twice."""
    at = T0 + timedelta(minutes=rng.randrange(1000))
    due = at + timedelta(hours=72)
    reminder = due - timedelta(hours=1)
    started = {"order_id": order, "started_at": at.isoformat(), "due_at": due.isoformat(),
               "reminders": [reminder.isoformat()], "grace_seconds": 60}  # fmt: skip
    events = [
        new_event(f"order-{order}", provider="post-purchase", type="order.created",
                  body={"orderId": order, "orderTotal": rng.randrange(100),
                        "customerEmail": f"{order}@example.com", "createdAt": at.isoformat()}),
        new_event(f"order-{order}", provider="hookledger", event_id=f"countdown.started:{order}",
                  type="countdown.started", body=started),
    ]  # fmt: skip
    for n in range(rng.randrange(3)):
        status = rng.choice(["approved", "declined", "submitted"])
        events.append(
            new_event(f"order-{order}", provider="veriff", type=f"verification.{status}",
                      body={"verification": {"id": f"s{n}", "status": status,
                                             "decisionTime": at.isoformat()}})
        )  # fmt: skip
    if rng.random() < 0.3:
        events.append(
            new_event(f"order-{order}", provider="hookledger", event_id=f"countdown.closed:{order}",
                      type=rng.choice(["countdown.expired", "countdown.satisfied"]),
                      body={"order_id": order})
        )  # fmt: skip
    return events


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(await db.fetch_all(query)) for name, query in TABLES.items()}


async def apply_in_batches(
    db: Database, sizes: list[int], streams: StreamCache | None = None
) -> None:
    """Run every projection over the new events, in batches of the given sizes
    (with ``streams``: sharing their reads, of the new events' heads only)."""
    for projection in PROJECTIONS.values():
        consumer = ProjectionConsumer(projection, streams)
        position = await read_checkpoint(db, consumer.name)
        for size in sizes * 1000:
            reader = read_after if streams is None else read_heads_after
            batch: list[Any] = await reader(db, position, size)
            if not batch:
                break
            async with db.transaction() as session:
                await lock_checkpoint(session, consumer.name, expected=position)
                await consumer.apply(session, batch)
                await advance_checkpoint(session, consumer.name, batch[-1].position)
            position = batch[-1].position


EXAMPLES = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SEEDS = st.integers(0, 2**32)
ORDERS = st.integers(1, 6)
SIZES = st.lists(st.integers(1, 9), min_size=1, max_size=4)


@EXAMPLES
@given(seed=SEEDS, orders=ORDERS, sizes=SIZES)
async def test_projections_applied_incrementally_equal_a_rebuild(
    db: Database, seed: int, orders: int, sizes: list[int]
) -> None:
    rng = random.Random(seed)
    events = [e for n in range(orders) for e in order_events(f"{seed}-{n}", rng)]
    rng.shuffle(events)  # arrival order: decisions may come before their order
    for start in range(0, len(events), 5):
        await write(db, events[start : start + 5])
        await apply_in_batches(db, sizes)
    live = await snapshot(db)
    await replay(db, list(PROJECTIONS.values()), parts=1)
    assert await snapshot(db) == live


@EXAMPLES
@given(seed=SEEDS, orders=ORDERS, sizes=SIZES, capacity=st.integers(1, 8))
async def test_projections_sharing_their_stream_reads_equal_a_rebuild(
    db: Database, seed: int, orders: int, sizes: list[int], capacity: int
) -> None:
    # A cache smaller than the orders drops streams while others still need them.
    rng = random.Random(seed)
    events = [e for n in range(orders) for e in order_events(f"{seed}-{n}", rng)]
    rng.shuffle(events)
    streams = StreamCache(capacity)
    for start in range(0, len(events), 5):
        await write(db, events[start : start + 5])
        await apply_in_batches(db, sizes, streams)
    live = await snapshot(db)
    await replay(db, list(PROJECTIONS.values()), parts=1)
    assert await snapshot(db) == live


async def test_a_rebuild_swaps_in_while_the_runner_keeps_applying(db: Database) -> None:
    rng = random.Random(7)
    await write(db, [e for n in range(200) for e in order_events(f"a{n}", rng)])
    runners = [
        ConsumerRunner(db, ProjectionConsumer(p), batch_size=50) for p in PROJECTIONS.values()
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        more = [e for n in range(100) for e in order_events(f"b{n}", rng)]
        writing = asyncio.create_task(_trickle(db, more))
        report = await replay(db, list(PROJECTIONS.values()))
        await writing
        head = (await read_after(db, 0, 100_000))[-1].position
        async with asyncio.timeout(30):
            while min([await read_checkpoint(db, r.consumer.name) for r in runners]) < head:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert report.orders >= 200
    live = await snapshot(db)
    await replay(db, list(PROJECTIONS.values()), parts=3)  # partitions in processes
    assert await snapshot(db) == live
    assert len(live["orders"]) == 300


class _Counter:
    def __init__(self) -> None:
        self.steps: list[int] = []

    def advance(self, count: int) -> None:
        self.steps.append(count)


@pytest.mark.parametrize("parts", [1, 2])
async def test_a_rebuild_advances_its_progress_by_every_event_it_folds_once(
    db: Database, parts: int
) -> None:
    rng = random.Random(11)
    await write(db, [e for n in range(30) for e in order_events(f"p{n}", rng)])
    counter = _Counter()
    report = await replay(db, list(PROJECTIONS.values()), counter, parts=parts)
    assert all(step > 0 for step in counter.steps)
    assert sum(counter.steps) == report.events > 0


async def _trickle(db: Database, events: list[NewEvent]) -> None:
    for start in range(0, len(events), 20):
        await write(db, events[start : start + 20])
        await asyncio.sleep(0.01)
