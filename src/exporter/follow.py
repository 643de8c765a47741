"""The background BigQuery exporter: whichever process holds the exporter's
lease keeps the table up to date with the ledger; the others stand by."""

from __future__ import annotations

import asyncio
import logging

from events.connector import Database
from events.errors import CheckpointMoved, HookledgerError, Unavailable
from events.leases import Lease, try_lease
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
    while True:
        lease = await _lease(db)
        if lease is not None:
            try:
                log.info("bigquery exporter active", extra={"table": config.table_id})
                await export(
                    db, destination, policy, follow=True, interval=interval,
                    batch_size=batch_size, patience=None, max_backoff=max_backoff, lease=lease,
                )  # fmt: skip
                log.warning("bigquery exporter lost its lease", extra={"table": config.table_id})
            except (Unavailable, CheckpointMoved) as exc:
                # A lost database, or a checkpoint moved under it (another runner, or
                # a table made anew): start again from the checkpoint.
                log.warning("bigquery exporter restarts", extra={"error": exc.detail})
            except HookledgerError as exc:
                # Refused (a schema conflict, no access): it will be refused again until
                # someone acts; retry slowly rather than skip anything.
                log.error("bigquery exporter failed", extra={"error": exc.detail})
            finally:
                await lease.release()
        await asyncio.sleep(retry_interval)


async def _lease(db: Database) -> Lease | None:
    try:
        return await try_lease(db, CHECKPOINT)
    except Unavailable as exc:
        log.warning("cannot ask for the exporter's lease", extra={"error": exc.detail})
        return None
