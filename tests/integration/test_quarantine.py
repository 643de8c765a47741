"""One event a consumer cannot apply never stops it: the event is set aside
(quarantined) and every later one is applied; a retry after the fix applies it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from events.appender import Appender, write
from events.checkpoints import read_checkpoint
from events.connector import Database, Session
from events.consumer import Consumer, ConsumerRunner
from events.model import NewEvent, RecordedEvent
from events.quarantine import quarantine_counts, quarantined, retry
from projections import projectors
from projections.fold import fold
from projections.projectors import PROJECTIONS, ProjectionConsumer
from projections.replay import ledger_head, replay
from scheduler.countdown import CountdownConfig
from scheduler.policy import CountdownPolicy
from tests.factories import new_event
from tests.support import until

COUNTDOWNS = "projection.countdowns"


def order_created(order: str, created_at: str, occurred_at: datetime | None = None) -> NewEvent:
    body = {"event": "order.created", "orderId": order, "createdAt": created_at}
    event = new_event(f"order-{order}", provider="post-purchase", body=body)
    return msgspec.structs.replace(event, occurred_at=occurred_at or datetime.now(UTC))


def now_text() -> str:
    return datetime.now(UTC).isoformat()


class BrokenFor:
    """The countdowns projection, failing (like a bug would) on one order's events
    until ``mended``."""

    name = COUNTDOWNS

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.mended = False
        self._inner = ProjectionConsumer(PROJECTIONS["countdowns"])

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None:
        relevant = self._inner.projection.relevant
        if not self.mended and any(e.stream == self.stream and relevant(e) for e in events):
            raise RuntimeError("cannot apply this one")
        await self._inner.apply(session, events)


@asynccontextmanager
async def running(db: Database, consumers: Sequence[Consumer]) -> AsyncIterator[None]:
    runners = [ConsumerRunner(db, c, batch_size=50, poll_interval=0.05, retry_interval=0.05)
               for c in consumers]  # fmt: skip
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    # A runner that died (rather than being cancelled) is what this file is about.
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results


def everything(appender: Appender, countdowns: Consumer | None = None) -> list[Any]:
    consumers: list[Any] = [ProjectionConsumer(p) for p in PROJECTIONS.values()]
    if countdowns is not None:
        consumers = [c for c in consumers if c.name != countdowns.name] + [countdowns]
    return [*consumers, CountdownPolicy(appender, CountdownConfig())]


async def caught_up(db: Database, *names: str) -> bool:
    head = await ledger_head(db)
    names = names or (*(p.consumer_name for p in PROJECTIONS.values()), CountdownPolicy.name)
    return all([await read_checkpoint(db, n) >= head for n in names])


async def countdown_of(db: Database, order: str) -> Any:
    row = await db.fetch_one("SELECT state FROM countdowns WHERE order_id = %s", (order,))
    return row[0] if row else None


async def test_an_order_recorded_with_a_year_9999_stops_nothing_and_later_orders_count_down(
    db: Database,
) -> None:
    # Recorded as the intake did before it checked times: the ledger keeps it for good.
    poison = order_created("far", "9999-12-31T23:59:59Z", datetime(9999, 12, 31, tzinfo=UTC))
    await write(db, [poison, order_created("later", now_text())])
    appender = Appender(db, group_commit=False)
    async with running(db, everything(appender)):
        await until(lambda: caught_up(db))
        await until(lambda: _has_countdown(db, "later"))
        await until(lambda: caught_up(db))
    assert await countdown_of(db, "later") == "running"
    assert await countdown_of(db, "far") == "running"  # counted from when it was recorded
    assert await quarantined(db) == []


async def _has_countdown(db: Database, order: str) -> bool:
    return await countdown_of(db, order) is not None


async def test_an_event_a_projection_cannot_apply_is_set_aside_and_a_retry_applies_it(
    db: Database,
) -> None:
    broken = BrokenFor("order-poison")
    appender = Appender(db, group_commit=False)
    await write(db, [order_created("before", now_text()), order_created("poison", now_text())])
    async with running(db, everything(appender, broken)):
        await until(lambda: _has_countdown(db, "before"))
        await write(db, [order_created("after", now_text())])
        await until(lambda: _has_countdown(db, "after"))
        await until(lambda: caught_up(db))
    assert await countdown_of(db, "poison") is None
    items = await quarantined(db)
    # The policy decided for the poisoned order too: its decision is set aside as well.
    assert {(q.consumer, q.stream, q.type) for q in items} == {
        (COUNTDOWNS, "order-poison", "countdown.started")
    }
    assert items[0].error.startswith("RuntimeError: cannot apply this one (at ")
    assert items[0].attempts == 1
    assert (await quarantine_counts(db))[COUNTDOWNS] == 1
    assert (await quarantine_counts(db))["projection.orders"] == 0

    still = await retry(db, {COUNTDOWNS: broken})
    assert [o.applied for o in still] == [False]
    assert (await quarantined(db))[0].attempts == 2

    broken.mended = True
    outcomes = await retry(db, {COUNTDOWNS: broken}, positions=[items[0].position])
    assert [(o.consumer, o.position, o.applied) for o in outcomes] == [
        (COUNTDOWNS, items[0].position, True)
    ]
    assert await quarantined(db) == []
    assert await countdown_of(db, "poison") == "running"


async def test_values_the_database_refuses_are_set_aside_until_the_cause_is_gone(
    db: Database,
) -> None:
    async with db.transaction() as session:
        await session.execute(
            "ALTER TABLE countdowns ADD CONSTRAINT planted CHECK (order_id <> 'poison')"
        )
    appender = Appender(db, group_commit=False)
    await write(db, [order_created(o, now_text()) for o in ("one", "poison", "two")])
    async with running(db, everything(appender)):
        await until(lambda: _has_countdown(db, "two"))
        await until(lambda: caught_up(db))
    assert await countdown_of(db, "one") == "running"
    [item] = await quarantined(db)
    assert (item.consumer, item.stream) == (COUNTDOWNS, "order-poison")
    assert item.error.startswith("DataRefused: CheckViolation")

    async with db.transaction() as session:
        await session.execute("ALTER TABLE countdowns DROP CONSTRAINT planted")
    consumers = {c.name: c for c in everything(appender)}
    assert [o.applied for o in await retry(db, consumers, consumer=COUNTDOWNS)] == [True]
    assert await countdown_of(db, "poison") == "running"
    assert await quarantined(db) == []


async def test_a_rebuild_sets_aside_what_no_fold_can_read_and_finishes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = {"order_id": "poison", "started_at": "2026-05-01T00:00:00+00:00",
               "due_at": "2026-05-04T00:00:00+00:00", "reminders": []}  # fmt: skip
    poison = new_event("order-poison", provider="hookledger", type="countdown.started",
                       event_id="poison-event", body=started)  # fmt: skip
    await write(
        db, [order_created("poison", now_text()), poison, order_created("fine", now_text())]
    )

    def failing_fold(order: str, events: Any) -> Any:
        if any(e.event_id == "poison-event" for e in events):
            raise ZeroDivisionError("a fold bug")
        return fold(order, events)

    monkeypatch.setattr(projectors, "fold", failing_fold)
    report = await replay(db, list(PROJECTIONS.values()), parts=1)
    assert report.set_aside == 1
    items = await quarantined(db)
    assert {q.consumer for q in items} == {p.consumer_name for p in PROJECTIONS.values()}
    assert {(q.position, q.type) for q in items} == {(2, "countdown.started")}
    orders = {r[0] for r in await db.fetch_all("SELECT order_id FROM orders")}
    assert orders == {"poison", "fine"}  # the rest of the poisoned order still applies

    monkeypatch.setattr(projectors, "fold", fold)
    await replay(db, list(PROJECTIONS.values()), parts=1)
    assert await quarantined(db) == []  # a rebuild applied it all again
    assert await countdown_of(db, "poison") == "running"


async def test_later_events_of_an_order_apply_without_the_one_set_aside(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fold(order: str, events: Any) -> Any:
        if any(e.event_id == "poison-event" for e in events):
            raise ZeroDivisionError("a fold bug")
        return fold(order, events)

    monkeypatch.setattr(projectors, "fold", failing_fold)
    orders = ProjectionConsumer(PROJECTIONS["orders"])
    poison = new_event("order-o", provider="post-purchase", type="order.created",
                       event_id="poison-event", body={"orderId": "o"})  # fmt: skip
    async with running(db, [orders]):
        for event in (
            order_created("o", now_text()),
            poison,
            new_event("order-o", type="order.paid"),
        ):
            await write(db, [event])
            await until(lambda: caught_up(db, orders.name))
    [item] = await quarantined(db)
    assert (item.consumer, item.event_id) == (orders.name, "poison-event")
    row = await db.fetch_one("SELECT status FROM orders WHERE order_id = 'o'")
    assert row == ("paid",)  # applied after the poisoned event, without it

    assert [o.applied for o in await retry(db, {orders.name: orders})] == [False]
    monkeypatch.setattr(projectors, "fold", fold)
    assert [o.applied for o in await retry(db, {orders.name: orders})] == [True]
    assert await quarantined(db) == []


@pytest.mark.parametrize("parts", [1, 2])
async def test_a_rebuild_sets_aside_the_event_behind_rows_the_database_refuses(
    db: Database, parts: int
) -> None:
    async with db.transaction() as session:
        await session.execute(
            "ALTER TABLE countdowns ADD CONSTRAINT planted CHECK (order_id <> 'poison')"
        )
    events: list[NewEvent] = []
    for order in ("one", "poison", "two"):
        started: dict[str, Any] = {"order_id": order, "started_at": "2026-05-01T00:00:00+00:00",
                   "due_at": "2026-05-04T00:00:00+00:00", "reminders": []}  # fmt: skip
        events += [order_created(order, now_text()),
                   new_event(f"order-{order}", provider="hookledger", type="countdown.started",
                             event_id=f"countdown.started:{order}", body=started)]  # fmt: skip
    await write(db, events)
    report = await replay(db, list(PROJECTIONS.values()), parts=parts)
    assert report.set_aside == 1
    [item] = await quarantined(db)
    assert (item.consumer, item.event_id) == (COUNTDOWNS, "countdown.started:poison")
    assert item.error.startswith("DataRefused: CheckViolation")
    assert {r[0] for r in await db.fetch_all("SELECT order_id FROM countdowns")} == {"one", "two"}
    orders = {r[0] for r in await db.fetch_all("SELECT order_id FROM orders")}
    assert orders == {"one", "poison", "two"}
