"""Background catch-up benchmark: how fast the background work of one process
(`hookledger worker`: the three projections, the countdown policy, the tree,
the timers, the actions in safe mode) works through a backlog of deliveries.

Fills a scratch database (``hl_bench_*``) with what the intake records for
``--orders`` orders (an order, a Veriff session event and a decision for each,
dated now, so every countdown starts and most are satisfied), then starts the
background work of one process and times it until every consumer has caught up.
It prints the deliveries worked through per second: after a burst, serve's
background process must get back under 5 s of lag within 10 s.

    python -m benchmarks.background [--orders 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime

import msgspec

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from events.appender import write
from events.checkpoints import consumer_lags
from events.connector import Database
from events.model import NewEvent
from hookledger.migrations import migrate
from hookledger.settings import from_env
from hookledger.wiring import build_worker

WRITE_BATCH = 3_000


def deliveries(n: int, rng: random.Random) -> list[NewEvent]:
    """One order's deliveries, as the intake records them, dated now."""
    order = f"bg-{n}"
    at = datetime.now(UTC)
    session = uuid.UUID(int=rng.getrandbits(128)).hex
    outcome = "approved" if rng.random() < 0.8 else "declined"

    def event(provider: str, event_id: str, kind: str, body: dict[str, object]) -> NewEvent:
        raw = msgspec.json.encode(body)
        return NewEvent(provider, event_id, f"order-{order}", kind, raw, raw, at,
                        {"correlation_id": "bench"})  # fmt: skip

    return [
        event("post-purchase", f"msg_{order}", "order.created",
              {"event": "order.created", "orderId": order, "orderTotal": 59.9, "currency": "EUR",
               "customerEmail": f"{order}@example.com", "createdAt": at.isoformat()}),
        event("veriff", f"event:{session}::submitted", "verification.submitted",
              {"id": session, "action": "submitted", "vendorData": order}),
        event("veriff", f"decision:{session}:9001:{outcome}:", f"verification.{outcome}",
              {"status": "success", "verification": {"id": session, "status": outcome,
               "code": 9001, "vendorData": order, "decisionTime": at.isoformat()}}),
    ]  # fmt: skip


async def fill(url: str, orders: int) -> int:
    db = Database(url, max_size=2)
    await db.open()
    written = 0
    try:
        await migrate(db)
        rng = random.Random(1)
        batch: list[NewEvent] = []
        for n in range(orders):
            batch.extend(deliveries(n, rng))
            if len(batch) >= WRITE_BATCH or n == orders - 1:
                await write(db, batch)
                written += len(batch)
                batch = []
    finally:
        await db.close()
    return written


async def catch_up(url: str) -> float:
    """Seconds for one process's background work to take every event."""
    settings = from_env({"HOOKLEDGER_DATABASE_URL": url, "HOOKLEDGER_LOG_LEVEL": "WARNING"})
    runtime = build_worker(settings, url, multiprocess_metrics=False)
    async with runtime.running():
        started = time.perf_counter()
        while True:
            await asyncio.sleep(0.1)
            lags = await consumer_lags(runtime.db)
            if lags and all(lag.events == 0 for lag in lags):
                return time.perf_counter() - started


async def run(url: str, orders: int) -> None:
    print(f"filling: {orders:,} orders ...", file=sys.stderr, flush=True)
    written = await fill(url, orders)
    print("catching up ...", file=sys.stderr, flush=True)
    seconds = await catch_up(url)
    print(f"background work of one process: {written:,} deliveries ({orders:,} orders) taken "
          f"in {seconds:.1f} s: {written / seconds:,.0f} deliveries/s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.background",
                                     description=(__doc__ or "").splitlines()[0])  # fmt: skip
    parser.add_argument("--orders", type=int, default=10_000, help="orders (3 deliveries each)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER,
                        help="any database on the Postgres server to use")  # fmt: skip
    args = parser.parse_args(argv)
    with scratch_database(args.database_url) as url:
        asyncio.run(run(url, args.orders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
