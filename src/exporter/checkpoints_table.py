"""Signed checkpoints copied to BigQuery, into a ``checkpoints`` table beside the
events: one more place that remembers what the ledger looked like, out of reach
of whoever can write the service's database. Each copy is a MERGE on ``size``,
so publishing again inserts nothing twice."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import msgspec
from google.api_core import exceptions as google_errors
from google.cloud import bigquery

from events.checkpoint_log import SignedCheckpoint, all_checkpoints
from events.connector import Database
from events.errors import HookledgerError
from exporter.bigquery import BigQueryConfig, make_client, translate_error

log = logging.getLogger(__name__)

TABLE = "checkpoints"
SCHEMA = [
    bigquery.SchemaField("size", "INT64", mode="REQUIRED", description="leaves in the tree"),
    bigquery.SchemaField("origin", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("root", "STRING", mode="REQUIRED", description="tree head, base64"),
    bigquery.SchemaField("key_fingerprint", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("signed_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("note", "STRING", mode="REQUIRED", description="the C2SP signed note"),
]


class _Row(msgspec.Struct):
    size: int
    origin: str
    root: str
    key_fingerprint: str
    signed_at: int  # microseconds since the epoch
    note: str


def _row(signed: SignedCheckpoint) -> _Row:
    micros = int(signed.signed_at.timestamp() * 1_000_000)
    return _Row(signed.size, signed.origin, base64.b64encode(signed.root).decode(),
                signed.key_fingerprint, micros, signed.note)  # fmt: skip


class CheckpointsTable:
    """Publishes every recorded checkpoint that the table does not hold yet."""

    def __init__(
        self, db: Database, config: BigQueryConfig, client: bigquery.Client | None = None
    ) -> None:
        self._db = db
        self.config = config
        self.table_id = f"{config.project}.{config.dataset}.{TABLE}"
        self._client = client
        self._ready = False

    async def publish(self) -> int:
        """Copy the checkpoints signed since the table's newest; how many were new."""
        if not self._ready:
            await self._call(self._ensure_table)
            self._ready = True
        newest = await self._call(self._newest)
        rows = [_row(c) for c in await all_checkpoints(self._db) if c.size > newest]
        if not rows:
            return 0
        inserted = int(await self._call(self._merge, msgspec.json.encode(rows).decode()))
        log.info("checkpoints published to bigquery", extra={"table": self.table_id,
                 "checkpoints": inserted, "size": rows[-1].size})  # fmt: skip
        return inserted

    async def run(self, interval: float) -> None:
        """Publish every ``interval`` seconds until cancelled."""
        while True:
            await self.publish()
            await asyncio.sleep(interval)

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    async def _call(self, function: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(function, *args)
        except HookledgerError:
            raise
        except Exception as exc:
            if isinstance(exc, google_errors.NotFound):
                self._ready = False  # the table went away: make it again next time
            raise translate_error(exc) from exc

    def _ensure_table(self) -> None:
        config = self.config
        dataset = bigquery.Dataset(f"{config.project}.{config.dataset}")
        if config.location:
            dataset.location = config.location
        self.client.create_dataset(dataset, exists_ok=True, timeout=config.timeout)
        table = bigquery.Table(self.table_id, schema=SCHEMA)
        table.description = "hookledger: the signed checkpoints of the ledger's Merkle tree"
        self.client.create_table(table, exists_ok=True, timeout=config.timeout)

    def _newest(self) -> int:
        rows = list(self._query(f"SELECT max(size) AS size FROM `{self.table_id}`"))  # noqa: S608
        return int(rows[0]["size"]) if rows and rows[0]["size"] is not None else -1

    def _merge(self, rows: str) -> int:
        # The table id is made of names BigQueryConfig has checked.
        statement = (
            f"MERGE `{self.table_id}` AS t\n"  # noqa: S608
            "USING (SELECT CAST(JSON_VALUE(r, '$.size') AS INT64) AS size,\n"
            "  JSON_VALUE(r, '$.origin') AS origin, JSON_VALUE(r, '$.root') AS root,\n"
            "  JSON_VALUE(r, '$.key_fingerprint') AS key_fingerprint,\n"
            "  TIMESTAMP_MICROS(CAST(JSON_VALUE(r, '$.signed_at') AS INT64)) AS signed_at,\n"
            "  JSON_VALUE(r, '$.note') AS note\n"
            "  FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r) AS s\n"
            "ON t.size = s.size\n"
            "WHEN NOT MATCHED THEN INSERT (size, origin, root, key_fingerprint, signed_at, note)\n"
            "VALUES (s.size, s.origin, s.root, s.key_fingerprint, s.signed_at, s.note)"
        )
        job = self.client.query(
            statement,
            job_config=bigquery.QueryJobConfig(
                query_parameters=[bigquery.ScalarQueryParameter("rows", "STRING", rows)]
            ),
            job_retry=None,
            timeout=self.config.timeout,
        )
        job.result(timeout=self.config.timeout)
        return int(job.num_dml_affected_rows or 0)

    def _query(self, sql: str) -> list[Any]:
        job = self.client.query(sql, job_retry=None, timeout=self.config.timeout)
        return list(job.result(timeout=self.config.timeout))
