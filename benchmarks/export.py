"""Export benchmark: ``hookledger export`` over a large ledger, to Parquet and
(with ``--bigquery-events N``) to bqemulator, as an operator runs it.

Builds a ledger of ``--events`` events (default 1,000,000) in a scratch
database through the real appender, in the mix an order's life produces
(order.created, countdown.started, verification.started/.submitted/.approved,
countdown.satisfied, order.paid; the orders and decisions ~1 KB, with the
e-mails and identity data the default policy removes), then times the command
and checks that every event arrived exactly once. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import psycopg
from psycopg import sql

from benchmarks.databases import (
    DEFAULT_SERVER,
    LOOPBACK,
    admin_url,
    postgres_context,
    with_database,
)
from benchmarks.ingest.requests import decision_body, order_body
from benchmarks.machine import machine_seconds
from events.appender import write
from events.connector import Database
from events.model import NewEvent
from hookledger.migrations import migrate

DB_PREFIX = "hl_bench_export_"
HASH_KEY = "bench-export-hash-key"
TARGET_PARQUET_RATE = 100_000.0
APPEND_BATCH = 5_000
EVENTS_PER_ORDER = 7


# -- the ledger --------------------------------------------------------------------


def _small(body: Mapping[str, object]) -> bytes:
    return json.dumps(body).encode()


def order_life(order: str, serial: int, at: datetime) -> list[NewEvent]:
    """The seven events of one verified order, as the service records them."""
    iso = at.isoformat(timespec="milliseconds")
    session = f"session-{order}"

    def event(provider: str, type_: str, body: bytes, occurred: datetime | None) -> NewEvent:
        return NewEvent(
            provider=provider,
            event_id=f"{type_}:{order}",
            stream=f"order-{order}",
            type=type_,
            payload_json=body,
            raw=body,
            occurred_at=occurred,
            metadata={"correlation_id": uuid.uuid4().hex, "scheme": "bench"},
        )

    countdown = {"order_id": order, "started_at": iso, "due_at": iso}
    attempt = {"id": session, "attemptId": f"{session}-1", "vendorData": order, "feature": "selfid"}
    return [
        event("post-purchase", "order.created", order_body("order.created", order, iso, serial),
              at),
        event("hookledger", "countdown.started", _small(countdown), None),
        event("veriff", "verification.started", _small({**attempt, "action": "started"}), None),
        event("veriff", "verification.submitted", _small({**attempt, "action": "submitted"}),
              None),
        event("veriff", "verification.approved",
              decision_body(order, session, "approved", 9001, iso), at),
        event("hookledger", "countdown.satisfied", _small({"order_id": order}), None),
        event("post-purchase", "order.paid", order_body("order.paid", order, iso, serial), at),
    ]  # fmt: skip


def ledger_events(count: int) -> Iterator[list[NewEvent]]:
    """``count`` events in append batches. An order's events are spread over the
    batches the way real traffic interleaves orders."""
    now = datetime.now(UTC)
    orders_per_batch = APPEND_BATCH // EVENTS_PER_ORDER
    made = 0
    serial = 0
    while made < count:
        lives = [order_life(f"b{serial + n}", serial + n, now) for n in range(orders_per_batch)]
        serial += orders_per_batch
        batch = [event for step in zip(*lives, strict=True) for event in step][: count - made]
        made += len(batch)
        yield batch


async def fill(url: str, count: int) -> float:
    """Append ``count`` events; the seconds it took."""
    db = Database(url, max_size=2)
    await db.open()
    try:
        await migrate(db)
        started = time.monotonic()
        for done, batch in enumerate(ledger_events(count), start=1):
            await write(db, batch)
            if done % 40 == 0:
                print(f"  ledger: {done * APPEND_BATCH:,} events", file=sys.stderr, flush=True)
        return time.monotonic() - started
    finally:
        await db.close()


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


@contextmanager
def ledger_database(server_url: str, name: str | None, count: int) -> Iterator[str]:
    """A database holding ``count`` events: ``name`` if given (made and kept), else a
    scratch one dropped afterwards."""
    database = name or f"{DB_PREFIX}{uuid.uuid4().hex[:10]}"
    url = with_database(server_url, database)
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        have = count_events(url)
        if have not in (0, count):
            raise RuntimeError(f"database {database} holds {have:,} events, not {count:,}")
        if have == 0:
            print(f"building a ledger of {count:,} events in {database} ...", file=sys.stderr)
            seconds = asyncio.run(fill(url, count))
            print(f"  appended in {seconds:.0f} s ({count / seconds:,.0f} events/s)",
                  file=sys.stderr)  # fmt: skip
        yield url
    finally:
        if name is None:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )


# -- runs --------------------------------------------------------------------------


class Run:
    """One ``hookledger export`` command, timed."""

    def __init__(self, label: str, args: list[str], env: dict[str, str]) -> None:
        self.label = label
        self.args = args
        self.env = env
        self.wall = 0.0
        self.cpu = 0.0
        self.machine = 0.0
        self.exported = 0
        self.export_seconds = 0.0

    def execute(self) -> Run:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy = machine_seconds()[0]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "hookledger.cli", "export", *self.args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        self.wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.machine = (machine_seconds()[0] - busy) / self.wall
        self.cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / self.wall
        if done.returncode != 0:
            raise RuntimeError(f"{self.label} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        match = re.search(r"^([\d,]+) events exported .* in ([\d.]+) s", done.stdout, re.M)
        if match is None:
            raise RuntimeError(f"{self.label}: unexpected output:\n{done.stdout}")
        self.exported = int(match[1].replace(",", ""))
        self.export_seconds = float(match[2])
        return self

    def report(self, count: int, target: float | None) -> list[str]:
        rate = self.exported / self.export_seconds if self.export_seconds else 0.0
        verdict = ""
        if target is not None:
            verdict = f"   target >= {target:,.0f}: {'met' if rate >= target else 'NOT met'}"
        return [
            f"{self.label}: {self.exported:,} of {count:,} events",
            f"  export {self.export_seconds:.1f} s = {rate:,.0f} events/s{verdict}",
            f"  command {self.wall:.1f} s wall (start-up and set-up included)",
            f"  CPU cores: exporter process {self.cpu:.2f}, whole machine {self.machine:.2f}"
            " (Postgres serves the reads on the other core)",
        ]


def check_parquet(directory: Path, count: int) -> str:
    source = f"read_parquet('{directory}/events/*/*.parquet')"
    with duckdb.connect() as connection:
        row = connection.execute(
            f"SELECT count(*), count(DISTINCT position), min(position), max(position) FROM {source}"  # noqa: S608
        ).fetchone()
    assert row is not None
    rows, distinct, low, high = row
    if rows != count or distinct != count:
        raise RuntimeError(f"Parquet holds {rows:,} rows, {distinct:,} positions; want {count:,}")
    size = sum(p.stat().st_size for p in directory.rglob("*.parquet"))
    files = len(list(directory.rglob("*.parquet")))
    return (
        f"  DuckDB: {rows:,} rows, each position once ({low}..{high}); "
        f"{files} files, {size / 2**20:.0f} MiB"
    )


def bigquery_run(url: str, count: int, workdir: Path) -> list[str]:
    from tests.exporter.emulator import BigQueryEmulator

    from exporter.bigquery import BigQueryConfig, make_client

    print("starting bqemulator (its venv is made on first use) ...", file=sys.stderr)
    emulator = BigQueryEmulator(workdir).start()
    try:
        env = {
            "HOOKLEDGER_DATABASE_URL": url,
            "HOOKLEDGER_EXPORT_HASH_KEY": HASH_KEY,
            "HOOKLEDGER_BIGQUERY_PROJECT": emulator.project,
            "HOOKLEDGER_BIGQUERY_DATASET": "bench",
            "HOOKLEDGER_BIGQUERY_ENDPOINT": emulator.endpoint,
        }
        print("exporting to bqemulator ...", file=sys.stderr)
        run = Run("bigquery (bqemulator 1.4.0)", ["--to", "bigquery", "--from-start"], env)
        lines = run.execute().report(count, None)
        config = BigQueryConfig(project=emulator.project, dataset="bench",
                                endpoint=emulator.endpoint)  # fmt: skip
        query = f"SELECT count(*), count(DISTINCT position) FROM `{config.table_id}`"  # noqa: S608
        rows, distinct = next(iter(make_client(config).query(query).result()))
        if rows != count or distinct != count:
            raise RuntimeError(f"BigQuery holds {rows:,} rows, {distinct:,} positions")
        lines.append(f"  emulator query: {rows:,} rows, each position once")
        return lines
    finally:
        emulator.stop()


# -- main --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger size")
    parser.add_argument(
        "--database-url", default=DEFAULT_SERVER, help="a database on the server to use"
    )
    parser.add_argument("--ledger", help="keep the ledger in this database and reuse it next time")
    parser.add_argument(
        "--bigquery-events",
        type=int,
        default=0,
        help="also export a ledger of this many events to bqemulator (e.g. 100000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    host = urlsplit(args.database_url).hostname
    if host is not None and host not in LOOPBACK:
        print(f"refusing database host {host!r}: the benchmark stays here", file=sys.stderr)
        return 2
    server_url = admin_url(args.database_url)
    print(f"hookledger export: {os.cpu_count()} CPUs shared by the exporter and "
          f"{postgres_context(server_url)}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hl-bench-export-") as scratch:
        with ledger_database(server_url, args.ledger, args.events) as url:
            directory = Path(scratch) / "parquet"
            env = {"HOOKLEDGER_DATABASE_URL": url, "HOOKLEDGER_EXPORT_HASH_KEY": HASH_KEY}
            print("exporting to Parquet ...", file=sys.stderr)
            run = Run("parquet", ["--to", "parquet", str(directory)], env).execute()
            lines = [*run.report(args.events, TARGET_PARQUET_RATE), check_parquet(directory,
                     args.events)]  # fmt: skip
            print("\n".join(lines), flush=True)
        if args.bigquery_events:
            # The emulator runs every MERGE in DuckDB against the whole table: its time
            # and memory grow with the table, so it gets a smaller ledger of its own.
            name = f"{args.ledger}_bq" if args.ledger else None
            with ledger_database(server_url, name, args.bigquery_events) as url:
                print("\n".join(bigquery_run(url, args.bigquery_events, Path(scratch))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
