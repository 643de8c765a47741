"""Erasure benchmark: one subject erased on a ledger of N events, and the
retention sweep's rate.

Fills a scratch database (``hl_bench_*``) with orders as the service records
them, their personal values held apart (``benchmarks.replay``'s orders), then:

- erases ``--erasures`` random orders one by one, as ``hookledger erase
  --order`` does (one transaction: the append lock, the values deleted, the
  projections and actions forgotten, one ``subject.erased`` event), and prints
  the median and slowest time against the 1 s target;
- makes ``--due`` other orders' values due and times the retention sweep
  erasing them (``hookledger retention``), in subjects/s against 5,000/s.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from benchmarks.replay import fill
from events.connector import Database
from personal.erasure import erase
from personal.retention import sweep

ERASE_TARGET = 1.0
SWEEP_TARGET = 5_000.0
MAKE_DUE = """
UPDATE personal_values SET due_at = now() - interval '1 day'
WHERE subject IN (SELECT DISTINCT subject FROM personal_values
                  WHERE subject LIKE 'order-bench-%%' ORDER BY subject DESC LIMIT %s)
RETURNING 1
"""


async def measure(url: str, orders: int, erasures: int, due: int) -> None:
    db = Database(url, max_size=4)
    await db.open()
    try:
        async with db.connection() as conn:
            await conn.session().execute("ANALYZE")
        rng = random.Random(7)
        seconds = []
        for order in rng.sample(range(orders // 2), erasures):
            started = time.perf_counter()
            done = await erase(db, [f"order-bench-{order}"], reason="benchmark", by="bench",
                               via="benchmark")  # fmt: skip
            seconds.append(time.perf_counter() - started)
            assert done[0].values > 0, "the order should have had personal values"
        median, worst = statistics.median(seconds), max(seconds)
        verdict = "meets" if worst < ERASE_TARGET else "misses"
        print(f"erasing one subject ({erasures} erased one by one):")
        print(f"  median          {median * 1000:>10.1f} ms")
        print(f"  slowest         {worst * 1000:>10.1f} ms   ({verdict} the target of < 1 s)")

        made = len(await db.fetch_all(MAKE_DUE, (due,)))
        started = time.perf_counter()
        swept = await sweep(db)
        elapsed = time.perf_counter() - started
        rate = swept.subjects / elapsed
        verdict = "meets" if rate >= SWEEP_TARGET else "misses"
        print(f"retention sweep ({made:,} values of {due:,} subjects made due):")
        print(f"  subjects        {swept.subjects:>10,}")
        print(f"  values          {swept.values:>10,}")
        print(f"  seconds         {elapsed:>10.2f}")
        print(f"  subjects/s      {rate:>10,.0f}   ({verdict} the target of {SWEEP_TARGET:,.0f})")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--erasures", type=int, default=20)
    parser.add_argument("--due", type=int, default=20_000, help="subjects the sweep erases")
    parser.add_argument(
        "--database-url", default=DEFAULT_SERVER, help="a server to make scratch databases on"
    )
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        written = asyncio.run(fill(url, args.events))
        print(f"ledger: {written:,} events")
        asyncio.run(measure(url, written // 6, args.erasures, args.due))


if __name__ == "__main__":
    main()
