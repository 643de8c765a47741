"""Console benchmark: every page's latency on a ledger of 1,000,000 events and
200,000 orders, with intake running at 1,000 events/s beside it.

Fills a scratch database as ``benchmarks.replay`` does (orders with their
countdowns, decisions and actions; personal values held apart), rebuilds the
projections, starts ``hookledger serve`` on it, posts signed deliveries at
``--rate`` events/s with wrk (pre-signed, paced by
``benchmarks/ingest/paced.lua``), and meanwhile signs in as an operator and
times each page ``--samples`` times: the overview, the orders page, a search by
order id and by e-mail address, an order's timeline, dead letters, trouble and
replays. Prints p50/p95 per page against the targets (p95 <= 100 ms; the order
search <= 50 ms). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from benchmarks.ingest.load import WrkResult, parse_wrk_output
from benchmarks.ingest.requests import write_request_files
from benchmarks.ingest.server import Server
from benchmarks.ingest.trees import this_tree
from benchmarks.replay import fill
from benchmarks.tree import build_by_consumer
from events.appender import write
from events.connector import Database
from events.model import NewEvent
from events.queries import QUERIES as LEDGER
from projections.projectors import PROJECTIONS
from projections.replay import replay
from scheduler.policy import CountdownPolicy

PAGE_TARGET = 0.100
OPERATOR_ACTIONS = 2_000  # retries already recorded, among the million events
WARM_UP = 10  # seconds of intake before the pages are timed
SEARCH_TARGET = 0.050
TOKEN = uuid.uuid4().hex
WRK_THREADS = 2
CONNECTIONS = (
    64  # as a busy provider keeps many in flight; the rate holds while each waits its commit
)
PACED_SCRIPT = Path(__file__).parent / "ingest" / "paced.lua"
PAGES = {
    "overview": "/console",
    "orders": "/console/orders",
    "search by id": "/console/orders?q={order}",
    "search by e-mail": "/console/orders?q={order}@example.com",
    "timeline": "/console/orders/{order}",
    "dead letters": "/console/dead-letters",
    "trouble": "/console/trouble",
    "replays": "/console/replays",
    "operators": "/console/operators",
}


async def rebuild(url: str, written: int) -> tuple[int, int]:
    """The ledger as a running service would have it: operators' retries
    recorded, projections rebuilt, the countdown policy past every event (its
    decisions are among those filled) and the Merkle tree holding every event.
    Left behind, the background would spend the measurement catching up on a
    million events. The ledger's events and orders."""
    db = Database(url, max_size=4)
    await db.open()
    try:
        # Of orders that exist: each has five events or more.
        await write(db, operator_retries(min(OPERATOR_ACTIONS, written // 6)))
        report = await replay(db, list(PROJECTIONS.values()))
        async with db.transaction() as session:
            await session.execute(
                LEDGER["reset_checkpoint"], (CountdownPolicy.name, report.position)
            )
        seconds = await build_by_consumer(db, report.events)
        print(f"tree of {report.events:,} events built in {seconds:.0f} s", file=sys.stderr)
        # What autovacuum does after a bulk load: without statistics the
        # planner takes one stream for hundreds of rows, and JIT-compiles a
        # 6-row read (40 ms).
        async with db.connection() as conn:
            await conn.session().execute("ANALYZE")
    finally:
        await db.close()
    return report.events, report.orders


def operator_retries(count: int) -> list[NewEvent]:
    """Retries an operator made over the months, for the Operators page to list."""
    who = {"by": "operator token b", "from": "203.0.113.9"}
    events = []
    for n in range(count):
        order = f"bench-{n}"
        key = f"refund:countdown.closed:{order}"
        body = {"action": "retry", "key": key, "kind": "refund", "retry": 1,
                "last_error": "provider said 500", "at": "2026-06-01T00:00:00Z", **who}  # fmt: skip
        raw = msgspec.json.encode(body)
        events.append(NewEvent(provider="hookledger", event_id=f"operator.retry:{key}:1",
                               stream=f"order-{order}", type="operator.retried",
                               payload_json=raw, raw=raw, metadata=who))  # fmt: skip
    return events


def start_intake(wrk: str, port: int, prefix: Path, rate: float) -> subprocess.Popen[str]:
    """wrk posting the pre-signed deliveries at ``rate`` a second until interrupted."""
    command = [wrk, "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", "3600s",
               "--timeout", "10s", "-s", str(PACED_SCRIPT), f"http://127.0.0.1:{port}/",
               "--", str(prefix), str(rate / WRK_THREADS)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_intake(process: subprocess.Popen[str]) -> WrkResult:
    """Interrupt wrk (it then prints its figures) and read them."""
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return parse_wrk_output(process.returncode, stdout, stderr)


def measure(base: str, orders: int, samples: int) -> dict[str, list[float]]:
    rng = random.Random(5)
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/console/sign-in", data={"token": TOKEN}).status_code == 303
        for _ in range(samples):
            order = f"bench-{rng.randrange(orders)}"
            for name, pattern in PAGES.items():
                path = pattern.format(order=order)
                started = time.perf_counter()
                answer = client.get(path)
                timings.setdefault(name, []).append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.status_code)
    return timings


def report(timings: dict[str, list[float]], load: WrkResult) -> None:
    refused = load.requests - load.accepted
    print(f"intake beside it: {load.accepted:,} deliveries accepted in {load.seconds:.0f} s "
          f"({load.accepted / load.seconds:,.0f}/s; p50 {load.p50_ms:.1f} ms, "
          f"p99 {load.p99_ms:.1f} ms; {refused:,} not accepted; "
          f"{load.wrapped} files replayed)")  # fmt: skip
    print(f"{'page':<20} {'p50 ms':>8} {'p95 ms':>8}  target")
    for name, values in timings.items():
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)
        target = SEARCH_TARGET if name.startswith("search") else PAGE_TARGET
        verdict = "ok" if p95 <= target else "MISSED"
        print(f"{name:<20} {p50 * 1000:>8.1f} {p95 * 1000:>8.1f}  <= {target * 1000:.0f} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200_000, help="at least this many orders")
    parser.add_argument("--rate", type=float, default=1_000.0, help="intake events/s beside")
    parser.add_argument("--samples", type=int, default=400, help="times each page is read")
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk); it posts the intake")
    with scratch_database(args.database_url) as url, tempfile.TemporaryDirectory() as scratch:
        # Recent orders, as a live shop has: none of their personal values is
        # due for the retention sweep yet, which would otherwise spend the
        # measurement erasing a year's backlog.
        start = datetime.now(UTC) - timedelta(seconds=args.orders * 1.1)
        written = asyncio.run(fill(url, args.events, orders_wanted=args.orders, start=start))
        events, orders = asyncio.run(rebuild(url, written))
        print(f"ledger: {events:,} events, {orders:,} orders")
        log = Path(tempfile.gettempdir()) / f"hookledger-bench-console-{os.getpid()}.log"
        # `hookledger serve` as a newcomer starts it (the background in a
        # process of its own), as benchmarks.ingest --serve-default does.
        server = Server(url, 1, True, log, this_tree(), default_shape=True)
        server.env.update({"HOOKLEDGER_OPERATOR_TOKENS": TOKEN, "HOOKLEDGER_LOG_LEVEL": "WARNING"})
        port = server.port
        # Signed now: the server refuses Standard Webhooks timestamps over 5 minutes old.
        prefix = Path(scratch) / "deliveries"
        planned = args.rate * (args.samples * len(PAGES) * 0.03 + WARM_UP + 30)
        write_request_files(prefix, f"127.0.0.1:{port}", int(planned), WRK_THREADS)
        server.start()
        base = f"http://127.0.0.1:{port}"
        loader = start_intake(wrk, port, prefix, args.rate)
        try:
            time.sleep(WARM_UP)  # the intake settled at its pace first
            timings = measure(base, orders, args.samples)
        finally:
            load = stop_intake(loader)
            server.stop()
        report(timings, load)


if __name__ == "__main__":
    main()
