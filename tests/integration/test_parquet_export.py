"""The local export: date-partitioned Parquet files read back with DuckDB."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest

from events.connector import Database
from events.store import read_stream
from exporter.batch import read_batch
from exporter.errors import DestinationRefused
from exporter.parquet import EVENTS_GLOB, ParquetDestination, parquet_destination
from exporter.policy import Policy, parse_path
from exporter.runner import export
from hookledger.samples import SAMPLES
from tests.exporter.fixtures import HASH_KEY
from tests.exporter.ledger import append, lifecycle_event, order_events
from tests.exporter.reference import concrete_paths, glob_match, reference
from tests.exporter.scenario import VIEWS, check_views, scenario_events
from tests.support import ROOT

SOURCE = f"read_parquet('{EVENTS_GLOB}', hive_partitioning = true)"


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB as an analyst opens it: in the export directory, with views.sql read."""
    connection = duckdb.connect()
    connection.execute(f"SET file_search_path = '{tmp_path}'")
    yield connection
    connection.close()


def query(duck: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    relation = duck.sql(sql)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def exported(duck: duckdb.DuckDBPyConnection, select: str = "*") -> list[dict[str, Any]]:
    return query(duck, f"SELECT {select} FROM {SOURCE} ORDER BY position")  # noqa: S608


def parquet_files(directory: Path) -> set[Path]:
    return set(directory.rglob("*.parquet"))


async def export_to(db: Database, directory: Path, policy: Policy, **options: Any) -> int:
    with parquet_destination(directory) as destination:
        destination.write_views()
        report = await export(db, destination, policy, **options)
    return report.events


async def test_each_event_is_in_the_files_exactly_once_with_the_exported_schema(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    positions = await append(db, order_events(30))

    assert await export_to(db, tmp_path, policy, batch_size=7) == 30

    rows = exported(duck)
    assert [r["position"] for r in rows] == positions
    assert ParquetDestination(tmp_path).position() == positions[-1]
    described = query(duck, f"DESCRIBE SELECT * FROM {SOURCE}")  # noqa: S608
    assert [(c["column_name"], c["column_type"]) for c in described] == [
        ("position", "BIGINT"), ("provider", "VARCHAR"), ("event_id", "VARCHAR"),
        ("stream", "VARCHAR"), ("stream_version", "BIGINT"), ("order_id", "VARCHAR"),
        ("type", "VARCHAR"), ("occurred_at", "TIMESTAMP WITH TIME ZONE"),
        ("recorded_at", "TIMESTAMP WITH TIME ZONE"), ("payload", "JSON"), ("metadata", "JSON"),
        ("recorded_date", "DATE"),
    ]  # fmt: skip
    a_file = min(parquet_files(tmp_path))
    nullable = {f.name for f in pq.read_schema(a_file) if f.nullable}
    assert nullable == {"order_id", "occurred_at"}
    first, second = rows[0], rows[1]
    assert (first["provider"], first["order_id"], first["stream"]) == (
        "post-purchase", first["stream"].removeprefix("order-"), first["stream"]
    )  # fmt: skip
    assert json.loads(first["metadata"]) == {"correlation_id": "test"}
    assert "@" not in first["payload"] and len(json.loads(first["payload"])["customerEmail"]) == 64
    assert "person" not in second["payload"] and "document" not in second["payload"]
    # Auditors still read the whole record from the ledger.
    audit = await read_stream(db, second["stream"])
    assert audit[-1].payload["verification"]["person"]["firstName"] == "SAMPLE"


async def test_a_second_run_exports_only_the_new_events_in_new_files(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    await append(db, order_events(10))
    assert await export_to(db, tmp_path, policy) == 10
    files_before = parquet_files(tmp_path)
    assert await export_to(db, tmp_path, policy) == 0
    new = await append(db, order_events(5))

    assert await export_to(db, tmp_path, policy) == 5

    assert parquet_files(tmp_path) > files_before
    assert [r["position"] for r in exported(duck, "position")][-5:] == new
    assert len(exported(duck, "position")) == 15


async def test_a_run_that_died_between_its_write_and_its_checkpoint_leaves_no_duplicate(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    positions = await append(db, order_events(12))
    with parquet_destination(tmp_path) as destination:
        start = await destination.prepare()
        batch = await read_batch(db, start, 8, policy)
        assert batch is not None
        await destination.write(batch)
        # The process dies here: files written, checkpoint not moved.
    assert ParquetDestination(tmp_path).position() == 0
    assert len(exported(duck, "position")) == 8

    assert await export_to(db, tmp_path, policy, batch_size=5) == 12

    assert [r["position"] for r in exported(duck, "position")] == positions


async def test_from_start_rewrites_everything_once(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    positions = await append(db, order_events(6))
    await export_to(db, tmp_path, policy)
    with parquet_destination(tmp_path) as destination:
        destination.reset()
        report = await export(db, destination, policy)
    assert report.events == 6
    assert [r["position"] for r in exported(duck, "position")] == positions


async def test_two_exports_cannot_write_to_one_directory_at_once(tmp_path: Path) -> None:
    with (
        parquet_destination(tmp_path),
        pytest.raises(DestinationRefused, match="another export"),
        parquet_destination(tmp_path),
    ):
        pass


async def test_files_are_partitioned_by_the_utc_day_of_recorded_at(
    db: Database, database_url: str, tmp_path: Path, policy: Policy,
    duck: duckdb.DuckDBPyConnection,
) -> None:  # fmt: skip
    moments = ["2026-03-01 23:59:59.999999+00", "2026-03-02 00:00:00+00", "2026-03-02 01:30+02"]
    with psycopg.connect(database_url) as conn:
        for n, moment in enumerate(moments, start=1):
            conn.execute(
                "INSERT INTO events (provider, event_id, stream, stream_version, type,"
                " recorded_at, payload, raw, prev_hash, hash)"
                " VALUES ('test', %s, 'order-x', %s, 't', %s, '{}', '', %s, %s)",
                (uuid.uuid4().hex, n, moment, "0" * 64, "0" * 64),
            )

    await export_to(db, tmp_path, policy)

    folders = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert folders == ["recorded_date=2026-03-01", "recorded_date=2026-03-02"]
    days = exported(duck, "CAST(recorded_date AS VARCHAR) AS day, position")
    assert [r["day"] for r in days] == ["2026-03-01", "2026-03-02", "2026-03-01"]


async def test_analyst_views_over_the_parquet_files_in_duckdb(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    await append(db, scenario_events())
    await export_to(db, tmp_path, policy)

    duck.execute((tmp_path / "views.sql").read_text())

    check_views({name: query(duck, f"SELECT * FROM {name}") for name in VIEWS})  # noqa: S608


async def test_every_provider_sample_is_exported_without_what_the_policy_removes(
    db: Database, tmp_path: Path, policy: Policy, duck: duckdb.DuckDBPyConnection
) -> None:
    events = [
        lifecycle_event(provider, name, f"{provider}-{name}", build(f"{provider}-{name}"))
        for provider, samples in SAMPLES.items()
        for name, build in samples.items()
    ]
    await append(db, events)

    await export_to(db, tmp_path, policy)

    rows = exported(duck)
    assert len(rows) == len(events)
    for event, row in zip(events, rows, strict=True):
        body = json.loads(event.payload_json)
        rules = [r for r in policy.rules if r.matches(event.provider, event.type)]
        drop = [parse_path(p) for r in rules for p in r.drop]
        hash_ = [parse_path(p) for r in rules for p in r.hash]
        payload = json.loads(row["payload"])
        assert payload == reference(body, drop, hash_, HASH_KEY), event.type
        assert not any(glob_match(p, path) for p in drop for path in concrete_paths(payload))
        # The auditors' read is the record as received.
        assert (await read_stream(db, event.stream))[0].payload == body


async def test_the_readmes_duckdb_one_liner_prints_the_funnel_of_an_export(
    db: Database, tmp_path: Path, policy: Policy
) -> None:
    await append(db, scenario_events())
    await export_to(db, tmp_path / "export", policy)
    readme = (ROOT / "README.md").read_text().splitlines()
    line = next(x.strip() for x in readme if x.startswith('    .venv/bin/python -c "import duckdb'))
    command = shlex.split(line)
    assert command[0] == ".venv/bin/python" and command[-1] == "DIR"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *command[1:-1], str(tmp_path / "export")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "verified_share" in done.stdout or "verified" in done.stdout, done.stdout
