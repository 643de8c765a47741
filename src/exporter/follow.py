"""The background BigQuery exporter: whichever process holds the exporter's
lease keeps the table up to date with the ledger; the others stand by."""

from __future__ import annotations

import logging

from events.connector import Database
from events.leases import Lease, run_while_leased
from exporter.bigquery import CHECKPOINT, BigQueryConfig, BigQueryDestination
from exporter.policy import Policy
from exporter.runner import export

log = logging.getLogger(__name__)


async def follow_bigquery(
    db: Database,
    config: BigQueryConfig,
    policy: Policy,
    *,
    interval: float = 10.0,
    batch_size: int | None = None,
    max_backoff: float = 30.0,
    retry_interval: float = 5.0,
) -> None:
    """Keep the BigQuery table up to date with the ledger until cancelled.

    Any number of processes may run this: the one holding the ``exporter.bigquery``
    lease exports, the others wait to take over. Its lag is the checkpoint's.
    """
    destination = BigQueryDestination(db, config)

    async def work(lease: Lease) -> None:
        log.info("bigquery exporter active", extra={"table": config.table_id})
        await export(
            db, destination, policy, follow=True, interval=interval,
            batch_size=batch_size, patience=None, max_backoff=max_backoff, lease=lease,
        )  # fmt: skip
        log.warning("bigquery exporter lost its lease", extra={"table": config.table_id})

    await run_while_leased(
        db,
        CHECKPOINT,
        work,
        retry_interval=retry_interval,
        context=lambda: {"table": config.table_id},
    )
