"""An erasure reaches the exports: BigQuery's rows of the subject are rewritten
without what was erased, and a Parquet export written afterwards holds none of it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow.parquet as pq
from google.cloud import bigquery

from events.appender import write
from events.connector import Database
from exporter.bigquery import BigQueryConfig, BigQueryDestination
from exporter.parquet import ParquetDestination
from exporter.policy import Policy
from exporter.runner import export
from personal.cutter import PersonalCutter
from personal.erasure import erase
from personal.policy import load_policy
from tests.exporter.ledger import bigquery_rows, order_events


async def test_an_erasure_rewrites_the_subjects_rows_in_bigquery(
    db: Database,
    bigquery_config: BigQueryConfig,
    bigquery_client: bigquery.Client,
    policy: Policy,
) -> None:
    events = order_events(4, tag="erase")
    await write(db, events, PersonalCutter(load_policy()))
    destination = BigQueryDestination(db, bigquery_config)
    await export(db, destination, policy)
    where = "stream = 'order-erase-0' AND type = 'order.created'"
    before = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "*", where)
    assert before[0]["payload"]["customerEmail"] is not None  # hashed, present

    await erase(db, ["order-erase-0"], reason="asked", by="dpo", via="test")
    await export(db, destination, policy)

    after = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "*", where)
    assert after[0]["payload"]["customerEmail"] is None
    other = "stream = 'order-erase-1' AND type = 'order.created'"
    kept = await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "*", other)
    assert kept[0]["payload"]["customerEmail"] is not None
    erased = "type = 'subject.erased'"
    assert len(await asyncio.to_thread(bigquery_rows, bigquery_client, bigquery_config, "*",
                                       erased)) == 1  # fmt: skip


async def test_a_parquet_export_after_an_erasure_holds_none_of_it(
    db: Database, tmp_path: Path, policy: Policy
) -> None:
    events = order_events(4, tag="pq")
    await write(db, events, PersonalCutter(load_policy()))
    await erase(db, ["order-pq-0"], reason="asked", by="dpo", via="test")
    await export(db, ParquetDestination(tmp_path), Policy([], b"k" * 32))

    written = "".join(
        json.dumps(pq.read_table(p).to_pylist(), default=str)
        for p in await asyncio.to_thread(lambda: list(tmp_path.rglob("*.parquet")))
    )
    assert "c0@example.com" not in written
    assert "c2@example.com" in written
