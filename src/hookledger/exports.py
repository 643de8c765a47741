"""Exports from settings: the policy, the BigQuery configuration, and the
background exporter a worker runs."""

from __future__ import annotations

import gc
import logging
import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from events.connector import Database
from hookledger.progress import progress
from hookledger.secrets import export_hash_key
from hookledger.settings import Settings, SettingsError

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # imported lazily below: a process that does not export skips them
    from events.leases import Lease
    from exporter.bigquery import BigQueryConfig
    from exporter.policy import Policy
    from exporter.runner import Destination, ExportReport


def export_policy(settings: Settings) -> Policy:
    """The configured policy (``HOOKLEDGER_EXPORT_POLICY_FILE``, else the default)."""
    from exporter.policy import Policy, PolicyError, load_rules

    path = Path(settings.export_policy_file) if settings.export_policy_file else None
    try:
        return Policy(load_rules(path), export_hash_key(settings))
    except PolicyError as exc:
        raise SettingsError(f"HOOKLEDGER_EXPORT_POLICY_FILE: {exc}") from None


def bigquery_config(settings: Settings) -> BigQueryConfig | None:
    """Where the BigQuery export goes; None when ``HOOKLEDGER_BIGQUERY_PROJECT`` is unset."""
    if not settings.bigquery_project:
        return None
    from exporter.bigquery import BigQueryConfig

    try:
        return BigQueryConfig(
            project=settings.bigquery_project,
            dataset=settings.bigquery_dataset,
            table=settings.bigquery_table,
            location=settings.bigquery_location or None,
            endpoint=settings.bigquery_endpoint or None,
        )
    except ValueError as exc:
        raise SettingsError(f"HOOKLEDGER_BIGQUERY_*: {exc}") from None


async def run_bigquery_exporter(db: Database, settings: Settings, config: BigQueryConfig) -> None:
    """Keep BigQuery up to date with the ledger until cancelled (one active
    exporter across all processes)."""
    from exporter.follow import follow_bigquery

    await follow_bigquery(db, config, export_policy(settings), interval=settings.export_interval)


# -- hookledger export -----------------------------------------------------------


async def export_to_parquet(
    db: Database, directory: Path, policy: Policy, settings: Settings, args: Namespace
) -> int:
    """``hookledger export --to parquet DIR [--follow] [--from-start]``."""
    from exporter.parquet import parquet_destination

    with parquet_destination(directory) as destination:
        if args.from_start:
            destination.reset()
        destination.write_views()
        report = await _run(db, destination, policy, settings, args, f"export to {directory}")
    print(f"{report.events:,} events exported to {directory} in {report.seconds:.2f} s "
          f"(up to position {report.position})")  # fmt: skip
    print(f"query them: cd {directory} && duckdb -init views.sql")
    return 0


async def export_to_bigquery(
    db: Database, config: BigQueryConfig, policy: Policy, settings: Settings, args: Namespace
) -> int:
    """``hookledger export --to bigquery [--follow] [--from-start]``."""
    from events.checkpoints import reset_checkpoint
    from events.leases import leased
    from exporter.bigquery import CHECKPOINT, BigQueryDestination

    async with leased(db, CHECKPOINT) as lease:
        if lease is None:
            print(f"hookledger: another process is exporting to BigQuery (it holds the "
                  f"{CHECKPOINT} lease)", file=sys.stderr)  # fmt: skip
            return 1
        if args.from_start:
            async with db.transaction() as session:
                await reset_checkpoint(session, CHECKPOINT, 0)
        destination = BigQueryDestination(db, config)
        report = await _run(db, destination, policy, settings, args, "export to BigQuery",
                            lease=lease)  # fmt: skip
    print(f"{report.events:,} events exported to {config.table_id} in {report.seconds:.2f} s "
          f"(up to position {report.position})")  # fmt: skip
    return 0


async def _run(
    db: Database,
    destination: Destination,
    policy: Policy,
    settings: Settings,
    args: Namespace,
    label: str,
    lease: Lease | None = None,
) -> ExportReport:
    from exporter.batch import count_after
    from exporter.runner import export

    # This process only exports: it allocates millions of short-lived, acyclic
    # objects (rows, decoded bodies), and collecting less often saves ~10% CPU.
    gc.set_threshold(100_000, 50, 100)
    start = await destination.prepare()
    interval = settings.export_interval
    if args.follow:
        return await export(db, destination, policy, start=start, follow=True, patience=None,
                            interval=interval, lease=lease)  # fmt: skip
    with progress(label, await count_after(db, start)) as bar:
        return await export(db, destination, policy, start=start, progress=bar,
                            interval=interval, lease=lease)  # fmt: skip
