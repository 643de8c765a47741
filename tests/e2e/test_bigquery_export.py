"""The BigQuery exporter against bqemulator, through the official client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.cloud import bigquery

from events.appender import Appender
from events.checkpoint_log import all_checkpoints, sign_checkpoint
from events.checkpoint_note import verify
from events.checkpoints import consumer_lags, lock_checkpoint, read_checkpoint
from events.connector import Database
from events.store import read_after
from events.tree import TreeConsumer, tree_size
from exporter.bigquery import CHECKPOINT, BigQueryConfig, BigQueryDestination
from exporter.checkpoints_table import CheckpointsTable
from exporter.errors import DestinationRefused
from exporter.follow import follow_bigquery
from exporter.policy import Policy
from exporter.runner import export
from exporter.schema import COLUMNS, Column
from hookledger.background import Background
from hookledger.checkpoint_key import LocalSigner
from hookledger.checkpointer import Checkpointer
from hookledger.exports import bigquery_config as exported_by
from hookledger.exports import run_bigquery_exporter
from hookledger.settings import Settings
from hookledger.wiring import action_settings
from tests.e2e_helpers import decision_body, order_body, send_post_purchase, send_veriff
from tests.exporter.emulator import BigQueryEmulator
from tests.exporter.fixtures import HASH_KEY
from tests.exporter.ledger import append, bigquery_rows, eventually, order_events
from tests.exporter.scenario import VIEWS, check_views, scenario_events
from tests.support import ServerProcess


async def test_events_appended_through_the_api_show_up_in_a_bigquery_query(
    server: ServerProcess,
    db: Database,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:
    order = order_body("api-1", customerEmail="buyer@example.com")
    decision = decision_body("api-1")
    decision["verification"]["person"] = {"firstName": "SAMPLE", "lastName": "PERSON"}
    assert (await asyncio.to_thread(send_post_purchase, server.url, order)).status_code == 200
    assert (await asyncio.to_thread(send_veriff, server.url, decision)).status_code == 200

    report = await export(db, BigQueryDestination(db, bigquery_config), policy)

    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config)
    assert report.events == 2
    assert [(r["provider"], r["type"], r["order_id"], r["stream"]) for r in rows] == [
        ("post-purchase", "order.created", "api-1", "order-api-1"),
        ("veriff", "verification.approved", "api-1", "order-api-1"),
    ]
    exported_order, exported_decision = (r["payload"] for r in rows)
    hashing = policy.redactor("post-purchase", "order.created")
    assert hashing is not None
    assert exported_order["customerEmail"] == hashing.hash("buyer@example.com")
    assert exported_order["orderId"] == "api-1"
    assert "person" not in exported_decision["verification"]
    assert exported_decision["verification"]["status"] == "approved"
    assert await read_checkpoint(db, CHECKPOINT) == rows[-1]["position"]
    # Its lag is the generic per-consumer one, from the checkpoints table.
    lag = {lag.name: lag for lag in await consumer_lags(db)}[CHECKPOINT]
    assert (lag.events, lag.seconds) == (0, 0)

    table = await asyncio.to_thread(bigquery_client.get_table, bigquery_config.table_id)
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "recorded_at"
    assert table.clustering_fields == ["provider", "type"]


async def test_analyst_views_on_bigquery(
    db: Database,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:
    await append(db, scenario_events())
    await export(db, BigQueryDestination(db, bigquery_config), policy)

    def query(view: str) -> list[dict[str, Any]]:
        name = f"{bigquery_config.project}.{bigquery_config.dataset}.{view}"
        return [dict(row) for row in bigquery_client.query(f"SELECT * FROM `{name}`").result()]  # noqa: S608

    check_views({name: await asyncio.to_thread(query, name) for name in VIEWS})


async def test_an_exporter_killed_between_write_and_checkpoint_leaves_one_row_per_event(
    database_url: str,
    db: Database,
    bigquery_emulator: BigQueryEmulator,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
) -> None:
    await BigQueryDestination(db, bigquery_config).prepare()
    positions = await append(db, order_events(40))

    async def rows_in_bigquery() -> int:
        return len(await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config))

    # Holding the checkpoint row lets the exporter write its batch, then stalls it
    # right before its checkpoint: that is where it is killed.
    async with db.transaction() as holder:
        await lock_checkpoint(holder, CHECKPOINT)
        first = ExporterProcess(database_url, bigquery_config).start()
        try:
            await eventually(lambda: _equals(rows_in_bigquery, 40))
        finally:
            first.kill()
    assert await read_checkpoint(db, CHECKPOINT) == 0, "killed before its checkpoint"

    positions += await append(db, order_events(10))
    second = ExporterProcess(database_url, bigquery_config).start()
    try:
        await eventually(lambda: _checkpoint_is(db, positions[-1]))
    finally:
        second.kill()

    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "position")
    assert [r["position"] for r in rows] == positions


async def test_a_bigquery_outage_stalls_the_export_and_it_catches_up_losing_nothing(
    db: Database,
    bigquery_emulator: BigQueryEmulator,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:
    exporter = asyncio.create_task(
        follow_bigquery(db, bigquery_config, policy, interval=0.1, max_backoff=0.5,
                        retry_interval=0.2)
    )  # fmt: skip
    try:
        before = await append(db, order_events(10))
        await eventually(lambda: _checkpoint_is(db, before[-1]))
        await asyncio.to_thread(bigquery_emulator.stop)
        try:
            during = await append(db, order_events(10))
            await asyncio.sleep(2)
            assert await read_checkpoint(db, CHECKPOINT) == before[-1], "stalled"
        finally:
            await asyncio.to_thread(bigquery_emulator.start)
        await eventually(lambda: _checkpoint_is(db, during[-1]))
    finally:
        exporter.cancel()
        await asyncio.gather(exporter, return_exceptions=True)

    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "position")
    assert [r["position"] for r in rows] == before + during


async def test_a_table_that_had_to_be_made_again_gets_the_whole_ledger(
    db: Database, bigquery_config: BigQueryConfig, bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:  # fmt: skip
    positions = await append(db, order_events(6))
    await export(db, BigQueryDestination(db, bigquery_config), policy)
    await asyncio.to_thread(bigquery_client.delete_table, bigquery_config.table_id)

    report = await export(db, BigQueryDestination(db, bigquery_config), policy)

    assert report.events == 6
    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "position")
    assert [r["position"] for r in rows] == positions


async def test_a_new_column_is_added_to_an_existing_table(
    db: Database, bigquery_config: BigQueryConfig, bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:  # fmt: skip
    older = [c for c in COLUMNS if c.name != "metadata"]
    await asyncio.to_thread(_create_table, bigquery_client, bigquery_config, older)
    positions = await append(db, order_events(2))

    await export(db, BigQueryDestination(db, bigquery_config), policy)

    rows = await asyncio.to_thread(
        bigquery_rows, bigquery_client, bigquery_config, "position, metadata"
    )
    assert [(r["position"], r["metadata"]) for r in rows] == [
        (p, {"correlation_id": "test"}) for p in positions
    ]


async def test_a_column_of_another_type_is_refused_with_the_way_out(
    db: Database, bigquery_config: BigQueryConfig, bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:  # fmt: skip
    changed = [c._replace(type="STRING") if c.name == "stream_version" else c for c in COLUMNS]
    await asyncio.to_thread(_create_table, bigquery_client, bigquery_config, changed)

    with pytest.raises(DestinationRefused, match=r"stream_version is STRING.*new table"):
        await export(db, BigQueryDestination(db, bigquery_config), policy)


def _create_table(client: bigquery.Client, config: BigQueryConfig, columns: list[Column]) -> None:
    client.create_dataset(f"{config.project}.{config.dataset}", exists_ok=True)
    schema = [bigquery.SchemaField(c.name, c.type) for c in columns]
    client.create_table(bigquery.Table(config.table_id, schema=schema))


async def _checkpoint_is(db: Database, position: int) -> bool:
    return await read_checkpoint(db, CHECKPOINT) == position


async def _equals(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() == expected


class ExporterProcess:
    """``hookledger export --to bigquery --follow`` as an operator runs it."""

    def __init__(self, database_url: str, config: BigQueryConfig) -> None:
        self.env = {
            **os.environ,
            "HOOKLEDGER_DATABASE_URL": database_url,
            "HOOKLEDGER_BIGQUERY_PROJECT": config.project,
            "HOOKLEDGER_BIGQUERY_DATASET": config.dataset,
            "HOOKLEDGER_BIGQUERY_ENDPOINT": config.endpoint or "",
            "HOOKLEDGER_EXPORT_HASH_KEY": HASH_KEY.decode(),
            "HOOKLEDGER_EXPORT_INTERVAL": "0.1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExporterProcess:
        command = [sys.executable, "-m", "hookledger.cli", "export", "--to", "bigquery", "--follow"]
        self.proc = subprocess.Popen(command, env=self.env, stderr=subprocess.PIPE)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.proc is not None and self.proc.stderr is not None
        try:
            if self.proc.poll() is not None:
                raise AssertionError(f"the exporter had exited: {self.proc.stderr.read()!r}")
            self.proc.kill()
            self.proc.wait()
        finally:
            self.proc.stderr.close()


async def test_the_worker_runs_no_exporter_job_without_a_project(db: Database) -> None:
    settings = Settings(database_url="postgresql://unused")
    background = Background(
        settings, db, Appender(db), action_settings(settings), Checkpointer(db, settings)
    )
    try:
        assert "exporter.bigquery" not in background.jobs()
        assert "projection.orders" in background.jobs()
    finally:
        await background.actions.close()


async def test_the_workers_exporter_follows_the_ledger_from_settings(
    db: Database, bigquery_config: BigQueryConfig, bigquery_client: bigquery.Client
) -> None:
    settings = Settings(
        database_url="postgresql://unused",
        bigquery_project=bigquery_config.project,
        bigquery_dataset=bigquery_config.dataset,
        bigquery_endpoint=bigquery_config.endpoint or "",
        export_hash_key=HASH_KEY.decode(),
        export_interval=0.1,
    )
    config = exported_by(settings)
    assert config is not None
    worker = asyncio.create_task(run_bigquery_exporter(db, settings, config))
    try:
        positions = await append(db, order_events(4))
        await eventually(lambda: _checkpoint_is(db, positions[-1]))
        positions += await append(db, order_events(3))
        await eventually(lambda: _checkpoint_is(db, positions[-1]))
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    rows = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "position")
    assert [r["position"] for r in rows] == positions


async def test_signed_checkpoints_are_published_to_their_own_bigquery_table_once(
    db: Database, bigquery_config: BigQueryConfig, bigquery_client: bigquery.Client
) -> None:
    signer = LocalSigner(Ed25519PrivateKey.generate())
    table = CheckpointsTable(db, bigquery_config)
    assert await table.publish() == 0  # nothing signed yet: the table is made, empty
    for order in ("cp-1", "cp-2"):
        await append(db, order_events(2, order))
        async with db.transaction() as session:
            await TreeConsumer().apply(session, await read_after(db, await tree_size(db), 1000))
        await sign_checkpoint(db, signer, "bq.example/log")
    assert await table.publish() == 2
    assert await table.publish() == 0  # published again: nothing twice

    def rows() -> list[dict[str, Any]]:
        query = f"SELECT size, root, note FROM `{table.table_id}` ORDER BY size"  # noqa: S608
        return [dict(row) for row in bigquery_client.query(query).result()]

    published = await asyncio.to_thread(rows)
    recorded = await all_checkpoints(db)
    assert [r["size"] for r in published] == [c.size for c in recorded]
    for row, signed in zip(published, recorded, strict=True):
        assert verify(row["note"], "bq.example/log", signer.public_key).root == signed.root
