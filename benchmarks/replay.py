"""Replay benchmark: rebuild every projection from a ledger of N events.

Fills a scratch database (``hl_bench_*``) with orders as the service records
them (order, countdown start, Veriff session events and decisions, the
countdown's end, action outcomes), their personal values cut out by the
default personal-data policy and held apart (``--no-personal``: kept whole, as
before issue 14), then times ``replay`` of all projections together and prints
events/s against the target. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from events.appender import write
from events.connector import Database
from events.model import NewEvent
from hookledger.migrations import migrate
from personal.cutter import PersonalCutter
from personal.policy import load_policy
from projections.projectors import PROJECTIONS
from projections.replay import replay

TARGET_RATE = 100_000.0
WRITE_BATCH = 5_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order_events(n: int, rng: random.Random, start: datetime = T0) -> list[NewEvent]:
    """One order's events, about six of them, as the service would have
    recorded; the orders a second apart from ``start``."""
    order = f"bench-{n}"
    stream = f"order-{order}"
    at = start + timedelta(seconds=n)
    due = at + timedelta(hours=72)
    session = uuid.UUID(int=rng.getrandbits(128)).hex
    outcome = "approved" if rng.random() < 0.8 else "declined"

    def event(provider: str, event_id: str, kind: str, body: dict[str, object]) -> NewEvent:
        raw = msgspec.json.encode(body)
        return NewEvent(provider, event_id, stream, kind, raw, raw, at, {"correlation_id": "b"})

    events = [
        event("post-purchase", f"msg_{order}", "order.created",
              {"event": "order.created", "orderId": order, "orderTotal": 59.9, "currency": "EUR",
               "customerEmail": f"{order}@example.com", "createdAt": at.isoformat()}),
        event("hookledger", f"countdown.started:{order}", "countdown.started",
              {"order_id": order, "started_at": at.isoformat(), "due_at": due.isoformat(),
               "reminders": [(due - timedelta(hours=24)).isoformat()], "grace_seconds": 86400}),
        event("veriff", f"event:{session}::submitted", "verification.submitted",
              {"id": session, "action": "submitted", "vendorData": order}),
        event("veriff", f"decision:{session}:9001:{outcome}:", f"verification.{outcome}",
              {"status": "success", "verification": {"id": session, "status": outcome,
               "code": 9001, "vendorData": order, "decisionTime": at.isoformat(),
               "person": {"firstName": "Bench", "lastName": f"Person {n}",
                          "dateOfBirth": "1990-01-01"}}}),
    ]  # fmt: skip
    if outcome == "approved":
        events.append(event("hookledger", f"countdown.closed:{order}", "countdown.satisfied",
                            {"order_id": order, "verification": events[-1].event_id}))  # fmt: skip
    else:
        events.append(event("hookledger", f"countdown.closed:{order}", "countdown.expired",
                            {"order_id": order, "due_at": due.isoformat()}))  # fmt: skip
        key = f"refund:countdown.closed:{order}"
        events.append(event("hookledger", f"action:{key}:dry_run", "action.dry_run",
                            {"action": "refund", "idempotency_key": key}))  # fmt: skip
    return events


async def fill(
    url: str,
    events_wanted: int,
    personal: bool = True,
    orders_wanted: int = 0,
    start: datetime = T0,
) -> int:
    """Append orders until the ledger holds at least ``events_wanted`` events
    and ``orders_wanted`` orders, a second apart from ``start`` (``personal``:
    their personal values cut out, as the service does)."""
    cutter = PersonalCutter(load_policy()) if personal else None
    rng = random.Random(1)
    db = Database(url, max_size=2)
    await db.open()
    written = 0
    n = 0
    started = time.perf_counter()
    try:
        await migrate(db)
        while written < events_wanted or n < orders_wanted:
            batch: list[NewEvent] = []
            while len(batch) < WRITE_BATCH:
                batch.extend(order_events(n, rng, start))
                n += 1
            await write(db, batch, cutter)
            written += len(batch)
            elapsed = time.perf_counter() - started
            print(f"\rfilling: {written:,} events ({written / elapsed:,.0f}/s)",
                  end="", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        await db.close()
    print(file=sys.stderr)
    return written


async def measure(url: str, parts: int | None) -> None:
    db = Database(url, max_size=4)
    await db.open()
    try:
        report = await replay(db, list(PROJECTIONS.values()), parts=parts)
    finally:
        await db.close()
    rate = report.events / report.seconds
    verdict = "meets" if rate >= TARGET_RATE else "misses"
    print(f"replay of all projections ({', '.join(report.projections)}), "
          f"{parts or os.cpu_count()} partition(s):")  # fmt: skip
    print(f"  events          {report.events:>12,}")
    print(f"  orders          {report.orders:>12,}")
    print(f"  seconds         {report.seconds:>12.2f}")
    print(f"  events/s        {rate:>12,.0f}   ({verdict} the target of {TARGET_RATE:,.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default=DEFAULT_SERVER, help="a server to make scratch databases on"
    )
    parser.add_argument("--parts", type=int, help="partitions folded in parallel (default: CPUs)")
    whole = "keep personal values whole in the ledger (as before issue 14)"
    parser.add_argument("--no-personal", action="store_true", help=whole)
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        asyncio.run(fill(url, args.events, personal=not args.no_personal))
        asyncio.run(measure(url, args.parts))


if __name__ == "__main__":
    main()
