"""The BigQuery exporter against bqemulator, through the official client."""

from __future__ import annotations

import asyncio

from google.cloud import bigquery

from events.checkpoints import consumer_lags, read_checkpoint
from events.connector import Database
from exporter.bigquery import CHECKPOINT, BigQueryConfig, BigQueryDestination
from exporter.policy import Policy
from exporter.runner import export
from tests.e2e_helpers import decision_body, order_body, send_post_purchase, send_veriff
from tests.exporter.ledger import bigquery_rows
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
