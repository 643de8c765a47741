"""``hookledger export`` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import duckdb
from google.cloud import bigquery

from events.connector import Database
from events.leases import leased
from exporter.bigquery import CHECKPOINT, BigQueryConfig
from exporter.parquet import EVENTS_GLOB
from tests.exporter.fixtures import HASH_KEY
from tests.exporter.ledger import append, bigquery_rows, order_events


async def hookledger(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hookledger.cli", *args]
    environment = {**os.environ, **env}
    return await asyncio.to_thread(
        subprocess.run, command, env=environment, capture_output=True, text=True, timeout=120
    )


def positions_in(directory: Path) -> list[int]:
    source = f"read_parquet('{directory}/{EVENTS_GLOB}')"
    with duckdb.connect() as connection:
        rows = connection.execute(f"SELECT position FROM {source} ORDER BY 1").fetchall()  # noqa: S608
    return [r[0] for r in rows]


async def test_export_to_parquet_is_incremental_and_from_start_backfills_with_progress(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    env = {"HOOKLEDGER_DATABASE_URL": database_url, "HOOKLEDGER_EXPORT_HASH_KEY": "k"}
    target = str(tmp_path / "export")
    positions = await append(db, order_events(25))

    first = await hookledger(env, "export", "--to", "parquet", target)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("25 events exported to")
    assert f"export to {target}: 25/25 events (100%)" in first.stderr
    assert (tmp_path / "export" / "views.sql").exists()

    again = await hookledger(env, "export", "--to", "parquet", target)
    assert again.stdout.startswith("0 events exported")
    positions += await append(db, order_events(5))
    more = await hookledger(env, "export", "--to", "parquet", target)
    assert more.stdout.startswith("5 events exported")
    assert await asyncio.to_thread(positions_in, tmp_path / "export") == positions

    backfill = await hookledger(env, "export", "--to", "parquet", target, "--from-start")
    assert backfill.stdout.startswith("30 events exported")
    assert await asyncio.to_thread(positions_in, tmp_path / "export") == positions


async def test_export_refuses_what_it_cannot_do_and_says_why(
    database_url: str, tmp_path: Path
) -> None:
    no_key = {"HOOKLEDGER_DATABASE_URL": database_url, "HOOKLEDGER_EXPORT_HASH_KEY": ""}
    refused = await hookledger(no_key, "export", "--to", "parquet", str(tmp_path))
    assert refused.returncode == 2
    assert "HOOKLEDGER_EXPORT_HASH_KEY is not set" in refused.stderr

    env = {**no_key, "HOOKLEDGER_EXPORT_HASH_KEY": "k", "HOOKLEDGER_BIGQUERY_PROJECT": ""}
    no_directory = await hookledger(env, "export", "--to", "parquet")
    assert no_directory.returncode == 2
    no_project = await hookledger(env, "export", "--to", "bigquery")
    assert no_project.returncode == 2
    assert "HOOKLEDGER_BIGQUERY_PROJECT is not set" in no_project.stderr


async def test_export_to_bigquery_runs_once_and_leaves_a_running_exporter_alone(
    database_url: str,
    db: Database,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
) -> None:
    env = {
        "HOOKLEDGER_DATABASE_URL": database_url,
        "HOOKLEDGER_EXPORT_HASH_KEY": HASH_KEY.decode(),
        "HOOKLEDGER_BIGQUERY_PROJECT": bigquery_config.project,
        "HOOKLEDGER_BIGQUERY_DATASET": bigquery_config.dataset,
        "HOOKLEDGER_BIGQUERY_ENDPOINT": bigquery_config.endpoint or "",
    }
    positions = await append(db, order_events(8))

    once = await hookledger(env, "export", "--to", "bigquery", "--from-start")
    assert once.returncode == 0, once.stderr
    assert once.stdout.startswith(f"8 events exported to {bigquery_config.table_id}")

    async with leased(db, CHECKPOINT) as held:
        assert held is not None
        busy = await hookledger(env, "export", "--to", "bigquery")
    assert busy.returncode == 1
    assert "another process is exporting to BigQuery" in busy.stderr

    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "position")
    assert [r["position"] for r in rows] == positions
