"""The BigQuery destination: one table partitioned by day of ``recorded_at`` and
clustered by provider and type, the analysts' views beside it, and the export's
position in the ledger's ``checkpoints`` table as ``exporter.bigquery``.

Exactly once as analysts see it: every write is a ``MERGE`` on ``position``
that inserts only the rows the table does not hold yet, in one atomic
statement. A batch written again (the exporter died after its write, before its
checkpoint) inserts nothing. The rows travel as one JSON string parameter, so
no staging table, load job or streaming buffer is involved; the ``ON`` clause
also bounds ``recorded_at`` to the batch's range, so only its partitions are
scanned.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError, TransportError
from google.cloud import bigquery

from events.checkpoints import (
    advance_checkpoint,
    lock_checkpoint,
    read_checkpoint,
    reset_checkpoint,
)
from events.connector import Database
from events.errors import HookledgerError
from exporter.batch import ExportBatch
from exporter.errors import DestinationRefused, DestinationUnavailable
from exporter.schema import CLUSTER_COLUMNS, COLUMNS, PARTITION_COLUMN, Column
from exporter.views import bigquery_statements

log = logging.getLogger(__name__)

CHECKPOINT = "exporter.bigquery"
# One MERGE carries at most this much row JSON: BigQuery takes requests of up to
# 10 MB, and a smaller statement keeps a retry cheap.
MAX_STATEMENT_BYTES = 4 * 1024 * 1024

_NAME = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,127}$")
# BigQuery reports some types by their legacy names.
_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
# Reasons BigQuery gives with a 403 that mean "later", not "never".
_RETRYABLE_REASONS = {"rateLimitExceeded", "backendError", "internalError", "jobRateLimitExceeded"}

T = TypeVar("T")


class BigQueryConfig(msgspec.Struct, frozen=True):
    """Where the export goes. ``endpoint`` (an emulator's URL) means no credentials."""

    project: str
    dataset: str = "hookledger"
    table: str = "events"
    location: str | None = None
    endpoint: str | None = None
    timeout: float = 60.0
    """Seconds any one request may take, retries included."""

    def __post_init__(self) -> None:
        if not _PROJECT.match(self.project):
            raise ValueError(f"not a BigQuery project id: {self.project!r}")
        for value in (self.dataset, self.table):
            if not _NAME.match(value):
                raise ValueError(f"not a BigQuery dataset or table name: {value!r}")

    @property
    def table_id(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def make_client(config: BigQueryConfig) -> bigquery.Client:
    """The official client: application default credentials, or none for an emulator."""
    if config.endpoint:
        return bigquery.Client(
            project=config.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=config.endpoint),
            location=config.location,
        )
    return bigquery.Client(project=config.project, location=config.location)


def merge_statement(table_id: str) -> str:
    """The idempotent insert of a batch given as ``@rows``, a JSON array of objects."""
    names = ", ".join(c.name for c in COLUMNS)
    return (
        f"MERGE `{table_id}` AS t\n"
        "USING (\n  SELECT\n    "
        + ",\n    ".join(f"{_from_json(c)} AS {c.name}" for c in COLUMNS)
        + "\n  FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r\n) AS s\n"
        f"ON t.position = s.position AND t.{PARTITION_COLUMN} BETWEEN @low AND @high\n"
        f"WHEN NOT MATCHED THEN INSERT ({names})\n"
        f"VALUES ({', '.join(f's.{c.name}' for c in COLUMNS)})"
    )


def rewrite_statement(table_id: str) -> str:
    """The payloads of rows the table holds, replaced by those of ``@rows`` (an
    erased subject's, exported again): nothing is inserted."""
    return (
        f"MERGE `{table_id}` AS t\n"
        "USING (\n  SELECT\n    "
        + ",\n    ".join(f"{_from_json(c)} AS {c.name}" for c in COLUMNS
                         if c.name in ("position", "payload", PARTITION_COLUMN))
        + "\n  FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r\n) AS s\n"
        f"ON t.position = s.position AND t.{PARTITION_COLUMN} BETWEEN @low AND @high\n"
        "WHEN MATCHED THEN UPDATE SET payload = s.payload"
    )  # fmt: skip


def _from_json(column: Column) -> str:
    path = f"'$.{column.name}'"
    if column.type == "JSON":
        # 'round': a number beyond 64 bits is kept approximately rather than failing
        # the whole batch.
        return f"PARSE_JSON(JSON_QUERY(r, {path}), wide_number_mode => 'round')"
    if column.type == "TIMESTAMP":
        return f"TIMESTAMP_MICROS(CAST(JSON_VALUE(r, {path}) AS INT64))"
    if column.type == "INT64":
        return f"CAST(JSON_VALUE(r, {path}) AS INT64)"
    return f"JSON_VALUE(r, {path})"


class _Row(msgspec.Struct):
    position: int
    provider: str
    event_id: str
    stream: str
    stream_version: int
    order_id: str | None
    type: str
    occurred_at: int | None
    recorded_at: int
    payload: msgspec.Raw
    metadata: msgspec.Raw


_encoder = msgspec.json.Encoder()


class Chunk(msgspec.Struct, frozen=True):
    """Rows for one MERGE: a JSON array, and the range of their ``recorded_at``."""

    rows: str
    count: int
    low: datetime
    high: datetime


def row_chunks(batch: ExportBatch, max_bytes: int = MAX_STATEMENT_BYTES) -> Iterator[Chunk]:
    """The batch as JSON rows, in chunks of at most ``max_bytes`` (at least one row)."""
    columns = batch.columns()
    start, size = 0, 0
    encoded: list[bytes] = []
    for index, values in enumerate(zip(*columns.values(), strict=True)):
        fields = dict(zip(columns, values, strict=True))
        fields["payload"] = msgspec.Raw(fields["payload"].encode())
        fields["metadata"] = msgspec.Raw(fields["metadata"].encode())
        row = _encoder.encode(_Row(**fields))
        if encoded and size + len(row) > max_bytes:
            yield _chunk(encoded, batch.recorded_at[start:index])
            start, size, encoded = index, 0, []
        encoded.append(row)
        size += len(row) + 1
    if encoded:
        yield _chunk(encoded, batch.recorded_at[start:])


def _chunk(rows: list[bytes], recorded_at: list[int]) -> Chunk:
    text = (b"[" + b",".join(rows) + b"]").decode()
    low, high = (datetime.fromtimestamp(0, UTC) + timedelta(microseconds=m)
                 for m in (min(recorded_at), max(recorded_at)))  # fmt: skip
    return Chunk(rows=text, count=len(rows), low=low, high=high)


class BigQueryDestination:
    """Writes batches into the table; keeps the position in the ledger."""

    name = "bigquery"
    batch_size = 10_000  # split further into MERGEs of at most MAX_STATEMENT_BYTES

    def __init__(
        self, db: Database, config: BigQueryConfig, client: bigquery.Client | None = None
    ) -> None:
        self._db = db
        self.config = config
        self._client = client
        self._merge = merge_statement(config.table_id)
        self._prepared = False

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    async def prepare(self) -> int:
        """Create or update the dataset, table and views; return the checkpoint.

        A table that had to be created starts from the beginning of the ledger,
        whatever the checkpoint says: it was made for another table (or this one
        was deleted), and MERGE makes going back harmless.
        """
        created = await self._call(self._ensure_table)
        await self._call(self._apply_views)
        self._prepared = True
        if created:
            async with self._db.transaction() as session:
                await reset_checkpoint(session, CHECKPOINT, 0)
            log.warning("bigquery table created: exporting the whole ledger",
                        extra={"table": self.config.table_id})  # fmt: skip
        return await read_checkpoint(self._db, CHECKPOINT)

    async def write(self, batch: ExportBatch) -> None:
        if not self._prepared:
            await self.prepare()
        for chunk in row_chunks(batch):
            try:
                await self._call(self._merge_rows, chunk)
            except DestinationRefused:
                # The table (or dataset) may be gone: prepare again next time.
                self._prepared = False
                raise

    async def rewrite(self, batch: ExportBatch) -> None:
        """An erased subject's rows, their payloads replaced (erased values gone)."""
        if not self._prepared:
            await self.prepare()
        for chunk in row_chunks(batch):
            await self._call(self._rewrite_rows, chunk)
        log.info("bigquery rows rewritten after an erasure",
                 extra={"stream": batch.stream[0], "rows": len(batch)})  # fmt: skip

    async def commit(self, previous: int, batch: ExportBatch) -> None:
        async with self._db.transaction() as session:
            await lock_checkpoint(session, CHECKPOINT, expected=previous)
            await advance_checkpoint(session, CHECKPOINT, batch.last_position)

    # -- blocking calls, run in a thread -----------------------------------------

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(function, *args)
        except HookledgerError:
            raise
        except Exception as exc:
            raise translate_error(exc) from exc

    def _retry(self) -> Retry:
        return bigquery.DEFAULT_RETRY.with_timeout(self.config.timeout)

    def _ensure_table(self) -> bool:
        client, config = self.client, self.config
        dataset = bigquery.Dataset(f"{config.project}.{config.dataset}")
        if config.location:
            dataset.location = config.location
        client.create_dataset(dataset, exists_ok=True, retry=self._retry(),
                              timeout=config.timeout)  # fmt: skip
        try:
            table = client.get_table(config.table_id, retry=self._retry(), timeout=config.timeout)
        except google_errors.NotFound:
            table = bigquery.Table(config.table_id, schema=[_field(c) for c in COLUMNS])
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=PARTITION_COLUMN
            )
            table.clustering_fields = list(CLUSTER_COLUMNS)
            table.description = "hookledger: one row per ledger event, personal data removed"
            client.create_table(table, retry=self._retry(), timeout=config.timeout)
            log.info("bigquery table created", extra={"table": config.table_id})
            return True
        self._add_missing_columns(table)
        return False

    def _add_missing_columns(self, table: bigquery.Table) -> None:
        """The additive half of a schema change: new columns join as NULLABLE."""
        live = {f.name: _LEGACY_TYPES.get(f.field_type, f.field_type) for f in table.schema}
        for column in COLUMNS:
            if column.name not in live:
                self._query(
                    f"ALTER TABLE `{self.config.table_id}` "
                    f"ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
                )
                log.info("bigquery column added",
                         extra={"table": self.config.table_id, "column": column.name})  # fmt: skip
            elif live[column.name] != column.type:
                raise DestinationRefused(
                    f"{self.config.table_id}.{column.name} is {live[column.name]}, the export "
                    f"writes {column.type}: export into a new table (see the README, "
                    "'Changing the export schema')"
                )

    def _apply_views(self) -> None:
        for statement in bigquery_statements(
            self.config.project, self.config.dataset, self.config.table
        ):
            self._query(statement)

    def _rewrite_rows(self, chunk: Chunk) -> None:
        self._query(rewrite_statement(self.config.table_id), _parameters(chunk))

    def _merge_rows(self, chunk: Chunk) -> None:
        job = self._query(self._merge, _parameters(chunk))
        log.debug("bigquery merge",
                  extra={"rows": chunk.count, "inserted": job.num_dml_affected_rows})  # fmt: skip

    def _query(
        self, sql: str, parameters: list[bigquery.ScalarQueryParameter] | None = None
    ) -> bigquery.QueryJob:
        job = self.client.query(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=parameters or []),
            retry=self._retry(),
            job_retry=None,
            timeout=self.config.timeout,
        )
        job.result(retry=self._retry(), timeout=self.config.timeout)
        return job


def _parameters(chunk: Chunk) -> list[bigquery.ScalarQueryParameter]:
    return [
        bigquery.ScalarQueryParameter("rows", "STRING", chunk.rows),
        bigquery.ScalarQueryParameter("low", "TIMESTAMP", chunk.low),
        bigquery.ScalarQueryParameter("high", "TIMESTAMP", chunk.high),
    ]


def _field(column: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        column.name,
        column.type,
        mode="REQUIRED" if column.required else "NULLABLE",
        description=column.description,
    )


def translate_error(exc: Exception) -> HookledgerError:
    """A client error as unavailable (retry later) or refused (needs a person)."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, google_errors.GoogleAPICallError):
        reasons = {e.get("reason") for e in exc.errors if isinstance(e, dict)}
        code = exc.code or 0
        if code >= 500 or code in (408, 429) or reasons & _RETRYABLE_REASONS:
            return DestinationUnavailable(detail)
        return DestinationRefused(detail)
    if isinstance(exc, TransportError | google_errors.RetryError | OSError | TimeoutError):
        # requests' connection errors are OSErrors; a RetryError is a deadline run out.
        return DestinationUnavailable(detail)
    if isinstance(exc, GoogleAuthError):
        return DestinationRefused(detail)
    return DestinationRefused(detail)
