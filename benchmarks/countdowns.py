"""Countdown benchmark: the Postgres timers and the actions under load.

Two runs, each on a scratch database (``hl_bench_*``) with real
``hookledger worker`` processes (projections, policy, timers, actions in safe
mode, so every action is recorded as a dry run):

1. burst: N countdowns all due within one minute. Measures how long after the
   last due time every order has its ``countdown.expired`` and both expiry
   actions (refund, email) recorded. Target: within 60 s.
2. steady: countdowns falling due at a steady rate (10/s). Measures each
   expiry's lateness: recorded_at minus the time it was due. Target: p99 <= 1 s.

Orders are appended directly to the ledger beforehand, dated so that their
countdowns (a 10 minute window) fall due once the workers have set up every
timer. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import LiteralString

import msgspec
import psycopg

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from events.appender import write
from events.connector import Database
from events.model import NewEvent
from hookledger.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
WINDOW = timedelta(minutes=10)
ACTIONS_PER_EXPIRY = 2  # refund and the expiry email
TARGET_BURST_SECONDS = 60.0
TARGET_P99_SECONDS = 1.0


def order(n: int, due: datetime) -> NewEvent:
    created = due - WINDOW
    body = msgspec.json.encode({
        "event": "order.created", "orderId": f"cd-{n}", "orderTotal": 59.9, "currency": "EUR",
        "customerEmail": f"cd-{n}@example.com", "createdAt": created.isoformat(),
        "transactionId": f"6000{n}", "cardLast4": "1111",
    })  # fmt: skip
    return NewEvent("post-purchase", f"msg_cd_{n}", f"order-cd-{n}", "order.created",
                    body, body, created)  # fmt: skip


async def fill(url: str, dues: list[datetime]) -> None:
    db = Database(url, max_size=2)
    await db.open()
    try:
        await migrate(db)
        for start in range(0, len(dues), 5000):
            await write(db, [order(start + i, d) for i, d in enumerate(dues[start : start + 5000])])
    finally:
        await db.close()


def scalar(url: str, query: LiteralString) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def start_workers(url: str, count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "HOOKLEDGER_DATABASE_URL": url,
        "HOOKLEDGER_COUNTDOWN_WINDOW": "10m",
        "HOOKLEDGER_COUNTDOWN_REMINDERS": "none",
        "HOOKLEDGER_LOG_LEVEL": "WARNING",
    }
    workers = []
    for n in range(count):
        log = (log_dir / f"worker-{n}.log").open("ab")
        command = [sys.executable, "-m", "hookledger.cli", "worker"]
        workers.append(
            subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_until(check: LiteralString, url: str, want: int, deadline: float, label: str) -> bool:
    while time.time() < deadline:
        have = int(scalar(url, check))
        print(f"\r  {label}: {have:,}/{want:,}", end="", file=sys.stderr, flush=True)
        if have >= want:
            print(file=sys.stderr)
            return True
        time.sleep(0.5)
    print(file=sys.stderr)
    return False


EXPIRED = "SELECT count(*) FROM events WHERE type = 'countdown.expired'"
ACTIONS = "SELECT count(*) FROM events WHERE type IN ('action.dry_run', 'action.succeeded')"
TIMERS = "SELECT count(*) FROM countdown_timers"
LATENESS = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY s), max(s), count(*)
FROM (SELECT extract(epoch FROM recorded_at - (payload->>'expires_at')::timestamptz) AS s
      FROM events WHERE type = 'countdown.expired') AS t
"""
LAST_OUTCOME = """
SELECT extract(epoch FROM max(recorded_at)) FROM events
WHERE type IN ('countdown.expired', 'action.dry_run', 'action.succeeded')
"""


def lateness(url: str) -> tuple[float, float, float, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(LATENESS).fetchone()
    assert row is not None
    (p50, p99), worst, count = row
    return float(p50 or 0), float(p99 or 0), float(worst or 0), int(count)


def run(server: str, total: int, spread: float, lead: float, workers: int, log_dir: Path,
        label: str) -> tuple[float, tuple[float, float, float, int]] | None:  # fmt: skip
    with scratch_database(server) as url:
        first_due = datetime.now(UTC) + timedelta(seconds=lead)
        dues = [first_due + timedelta(seconds=spread * i / total) for i in range(total)]
        last_due = dues[-1]
        print(f"{label}: {total:,} countdowns due from {first_due:%H:%M:%S} over {spread:.0f} s",
              file=sys.stderr)  # fmt: skip
        asyncio.run(fill(url, dues))
        procs = start_workers(url, workers, log_dir)
        try:
            ready = wait_until(TIMERS + " WHERE timer = 'expire'", url, total,
                               first_due.timestamp(), "timers set up")  # fmt: skip
            if not ready:
                print(f"  setup did not finish before the first due time: raise --lead ({lead} s)",
                      file=sys.stderr)  # fmt: skip
                return None
            deadline = last_due.timestamp() + 600
            wait_until(EXPIRED, url, total, deadline, "expired")
            wait_until(ACTIONS, url, total * ACTIONS_PER_EXPIRY, deadline, "action outcomes")
        finally:
            stop_workers(procs)
        done = scalar(url, LAST_OUTCOME) - last_due.timestamp()
        return done, lateness(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--countdowns", type=int, default=100_000, help="burst size")
    lead_help = "seconds from start to the first due time (setup must fit)"
    parser.add_argument("--lead", type=float, default=150.0, help=lead_help)
    parser.add_argument("--rate", type=float, default=10.0, help="steady countdowns per second")
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1, help="hookledger worker processes")
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    burst = run(args.database_url, args.countdowns, 60.0, args.lead, args.workers,
                args.log_dir, "burst")  # fmt: skip
    steady_total = int(args.rate * args.steady_seconds)
    steady = run(args.database_url, steady_total, args.steady_seconds, 20.0, args.workers,
                 args.log_dir, "steady")  # fmt: skip

    print(f"countdowns with {args.workers} worker process(es), safe mode (actions as dry runs):")
    if burst:
        done, (p50, p99, worst, count) = burst
        verdict = "meets" if done <= TARGET_BURST_SECONDS else "misses"
        print(f"  burst: {count:,} countdowns due within 60 s")
        print(f"    every expiry and action recorded {done:.1f} s after the last due time "
              f"({verdict} the target of {TARGET_BURST_SECONDS:.0f} s)")  # fmt: skip
        print(f"    expiry lateness p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s")
    if steady:
        _, (p50, p99, worst, count) = steady
        verdict = "meets" if p99 <= TARGET_P99_SECONDS else "misses"
        print(f"  steady: {count:,} countdowns at {args.rate:g} due per second")
        print(f"    expiry lateness p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s "
              f"({verdict} the target p99 <= {TARGET_P99_SECONDS:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
