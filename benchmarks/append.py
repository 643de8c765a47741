"""Appender benchmark: what one group-commit batch costs, without HTTP.

Writes batches of N webhook-sized events (about 1 KB, four per order stream)
through the real appender's ``write`` on its own connection, one batch after
another, and prints per batch: wall time, this process's CPU and the Postgres
backend's CPU (read with psutil, so Postgres must run on this machine). Running
it at two batch sizes separates a batch's fixed cost from each event's.
``--personal`` cuts the personal values out as the service does (the default
policy), so the two runs show what holding them apart costs each event.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

from benchmarks.databases import DEFAULT_SERVER, admin_url, scratch_database
from benchmarks.ingest.requests import decision_body, order_body
from benchmarks.machine import process_cpu
from events.appender import write
from events.connector import Database
from events.model import NewEvent
from hookledger.migrations import migrate
from personal.cutter import PersonalCutter
from personal.policy import load_policy

WARMUP = 50


def batch(serial: int, size: int) -> list[NewEvent]:
    """One batch of unique deliveries, four to an order's stream: orders and
    Veriff decisions of about 1 KB (benchmarks.ingest's bodies)."""
    events = []
    at = datetime.now(UTC).isoformat()
    for index in range(size):
        order = f"o{serial}-{index // 4}"
        if index % 2:
            raw = decision_body(order, f"s-{serial}-{index}", "approved", 9001, at)
            provider, kind = "veriff", "verification.approved"
        else:
            raw = order_body("order.created", order, at, index)
            provider, kind = "post-purchase", "order.created"
        events.append(
            NewEvent(
                provider=provider,
                event_id=f"msg_{uuid.uuid4().hex}",
                stream=f"order-{order}",
                type=kind,
                payload_json=raw,
                raw=raw,
                occurred_at=datetime.now(UTC),
                metadata={"correlation_id": uuid.uuid4().hex, "scheme": "standard-webhooks"},
            )
        )
    return events


async def measure(url: str, size: int, count: int, personal: bool) -> None:
    cutter = PersonalCutter(load_policy()) if personal else None
    db = Database(url)
    await db.open()
    await migrate(db)
    conn = await db.connect_writer()
    row = await conn.session().fetch_one("SELECT pg_backend_pid()")
    assert row is not None
    pid = int(row[0])
    batches = [batch(serial, size) for serial in range(WARMUP + count)]
    for events in batches[:WARMUP]:
        await write(conn, events, cutter)
    wall, cpu, backend = time.perf_counter(), time.process_time(), process_cpu([pid])[pid]
    for events in batches[WARMUP:]:
        await write(conn, events, cutter)
    wall = (time.perf_counter() - wall) / count * 1000
    cpu = (time.process_time() - cpu) / count * 1000
    backend = (process_cpu([pid])[pid] - backend) / count * 1000
    cut = "personal values cut out and held apart" if personal else "kept whole"
    print(f"{size} events per batch, {count:,} batches, {cut}; per batch:")
    print(f"  wall             {wall:8.3f} ms")
    print(f"  appender CPU     {cpu:8.3f} ms   ({cpu / size * 1000:5.0f} us per event)")
    print(f"  Postgres CPU     {backend:8.3f} ms   ({backend / size * 1000:5.0f} us per event)")
    await conn.close()
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--batch", type=int, default=16, help="events per batch (default 16)")
    parser.add_argument("--batches", type=int, default=1500, help="batches (default 1500)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    parser.add_argument("--personal", action="store_true",
                        help="cut the personal values out, as the service does")  # fmt: skip
    args = parser.parse_args()
    with scratch_database(admin_url(args.database_url)) as url:
        asyncio.run(measure(url, args.batch, args.batches, args.personal))


if __name__ == "__main__":
    main()
