"""The exported table's columns: one definition for BigQuery and Parquet.

Changing it: a new column is added at the end as NULLABLE (the exporter adds it
to an existing BigQuery table by itself; rows exported before hold NULL until
re-exported into a new table). Any other change (a type, a removal, a rename)
needs a new table: see "Changing the schema" in the README.
"""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    type: str
    """The BigQuery type: INT64, STRING, TIMESTAMP or JSON."""
    required: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("position", "INT64", True, "the ledger's order of appends; unique per event"),
    Column("provider", "STRING", True, "who sent the event (hookledger: its own decisions)"),
    Column("event_id", "STRING", True, "the provider's id; unique per provider"),
    Column("stream", "STRING", True, "order-<order_id>, or <provider>-<id>"),
    Column("stream_version", "INT64", True, "1, 2, 3 ... within the stream"),
    Column("order_id", "STRING", False, "the order, for events of an order stream"),
    Column("type", "STRING", True, "e.g. order.created, verification.approved"),
    Column("occurred_at", "TIMESTAMP", False, "the provider's time, when it gives one"),
    Column("recorded_at", "TIMESTAMP", True, "when hookledger recorded it"),
    Column("payload", "JSON", True, "the body, after the export policy"),
    Column("metadata", "JSON", True, "correlation id, signature scheme, headers"),
)

PARTITION_COLUMN = "recorded_at"
CLUSTER_COLUMNS = ("provider", "type")
