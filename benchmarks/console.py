"""Console benchmark: every page's latency on a ledger of 1,000,000 events and
about 200,000 orders, with intake running at 1,000 events/s beside it.

Fills a scratch database as ``benchmarks.replay`` does (orders with their
countdowns, decisions and actions; personal values held apart), rebuilds the
projections, starts ``hookledger serve`` on it, posts signed deliveries at
``--rate`` events/s from a thread, and meanwhile signs in as an operator and
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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from api.signatures import standard_webhooks_sign
from benchmarks.databases import DEFAULT_SERVER, scratch_database
from benchmarks.ingest.requests import POST_PURCHASE_SECRET, VERIFF_SECRET, order_body
from benchmarks.ingest.server import free_port
from benchmarks.replay import fill
from events.connector import Database
from projections.projectors import PROJECTIONS
from projections.replay import replay

PAGE_TARGET = 0.100
SEARCH_TARGET = 0.050
TOKEN = uuid.uuid4().hex
LANES = 16  # connections posting deliveries, each at its share of the rate


async def rebuild(url: str) -> int:
    db = Database(url, max_size=4)
    await db.open()
    try:
        report = await replay(db, list(PROJECTIONS.values()))
        # What autovacuum does after a bulk load: without statistics the
        # planner takes one stream for hundreds of rows, and JIT-compiles a
        # 6-row read (40 ms).
        async with db.connection() as conn:
            await conn.session().execute("ANALYZE")
    finally:
        await db.close()
    return report.orders


def serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOOKLEDGER_DATABASE_URL": url, "HOOKLEDGER_OPERATOR_TOKENS": TOKEN,
           "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
           "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
           "HOOKLEDGER_LOG_LEVEL": "WARNING"}  # fmt: skip
    command = [sys.executable, "-m", "hookledger.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server did not start; see {log}")


def intake(base: str, rate: float, stop: threading.Event, sent: list[int], lane: int) -> None:
    """Signed orders at ``rate`` a second until ``stop`` (one of several lanes)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        started, n = time.monotonic(), 0
        while not stop.is_set():
            n += 1
            order = f"load-{lane}-{n}"
            body = order_body("order.created", order, time.strftime("%Y-%m-%dT%H:%M:%SZ"), n)
            msg, stamp = f"msg_console_{n}_{uuid.uuid4().hex[:6]}", int(time.time())
            client.post("/api/v1/post-purchase/webhook", content=body, headers={
                "content-type": "application/json", "webhook-id": msg,
                "webhook-timestamp": str(stamp),
                "webhook-signature": standard_webhooks_sign(POST_PURCHASE_SECRET, msg, stamp, body),
            })  # fmt: skip
            sent[lane] = n
            pause = started + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def measure(base: str, orders: int, samples: int) -> dict[str, list[float]]:
    rng = random.Random(5)
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/console/sign-in", data={"token": TOKEN}).status_code == 303
        for _ in range(samples):
            order = f"bench-{rng.randrange(orders)}"
            pages = {
                "overview": "/console",
                "orders": "/console/orders",
                "search by id": f"/console/orders?q={order}",
                "search by e-mail": f"/console/orders?q={order}@example.com",
                "timeline": f"/console/orders/{order}",
                "dead letters": "/console/dead-letters",
                "trouble": "/console/trouble",
                "replays": "/console/replays",
            }
            for name, path in pages.items():
                started = time.perf_counter()
                answer = client.get(path)
                timings.setdefault(name, []).append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.status_code)
    return timings


def report(timings: dict[str, list[float]], sent: int, seconds: float) -> None:
    print(f"intake beside it: {sent:,} deliveries in {seconds:.0f} s ({sent / seconds:,.0f}/s)")
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
    parser.add_argument("--rate", type=float, default=1_000.0, help="intake events/s beside")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        written = asyncio.run(fill(url, args.events))
        orders = asyncio.run(rebuild(url))
        print(f"ledger: {written:,} events, {orders:,} orders")
        port = free_port()
        log = Path(tempfile.gettempdir()) / f"hookledger-bench-console-{port}.log"
        server = serve(url, port, log)
        base = f"http://127.0.0.1:{port}"
        stop, sent = threading.Event(), [0] * LANES
        loaders = [threading.Thread(target=intake, args=(base, args.rate / LANES, stop, sent, lane),
                                    daemon=True) for lane in range(LANES)]  # fmt: skip
        try:
            started = time.monotonic()
            for loader in loaders:
                loader.start()
            time.sleep(2)  # the intake at its pace first
            timings = measure(base, orders, args.samples)
            stop.set()
            for loader in loaders:
                loader.join()
            report(timings, sum(sent), time.monotonic() - started)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
