"""The ``hookledger`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from hookledger.settings import Settings, SettingsError, from_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = from_env(os.environ)
        code: int = args.run(settings, args)
    except SettingsError as exc:
        print(f"hookledger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookledger", description="Webhooks and orders as an append-only event ledger."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.set_defaults(run=_migrate)

    history = commands.add_parser("history", help="print an order's audit history")
    history.add_argument("order_id")
    history.add_argument("--json", action="store_true", help="JSON instead of a table")
    history.set_defaults(run=_history)

    verify = commands.add_parser("verify", help="recompute every hash chain")
    verify.add_argument("--stream", help="only this stream (e.g. order-1001)")
    verify.set_defaults(run=_verify)

    send = commands.add_parser("send", help="sign a body and post it to a running service")
    send.add_argument("provider", help="veriff or post-purchase")
    send.add_argument(
        "body",
        nargs="?",
        help="a sample name (see --list), a file, or - for stdin; default: the first sample",
    )
    send.add_argument("--order", help="order id for a sample (default: a new one)")
    send.add_argument("--url", default="http://127.0.0.1:8080", help="the service's base URL")
    send.add_argument("--list", action="store_true", help="list the built-in samples")
    send.set_defaults(run=_send)

    export = commands.add_parser("export", help="export the ledger for analysts")
    export.add_argument("--to", choices=("parquet", "bigquery"), required=True)
    export.add_argument("directory", nargs="?", type=Path, help="with --to parquet: where to write")
    export.add_argument("--follow", action="store_true", help="keep exporting new events")
    export.add_argument(
        "--from-start", action="store_true", help="export the whole ledger again (a backfill)"
    )
    export.set_defaults(run=_export)
    return parser


# -- database-backed commands --------------------------------------------------


@contextmanager
def _database_url(settings: Settings) -> Any:
    """The configured database, or the embedded one started for the duration."""
    if settings.database_url:
        yield settings.database_url
        return
    from hookledger.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[Any]:
    from events.connector import Database
    from hookledger.migrations import migrate

    db = Database(url, max_size=2)
    await db.open()
    try:
        await migrate(db)
        yield db
    finally:
        await db.close()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from hookledger.logs import configure
    from hookledger.secrets import provider_secrets

    configure(settings.log_level)
    with _database_url(settings) as url, _metrics_dir(args.workers):
        if settings.embedded:
            # The workers read their settings from the environment: hand them
            # the embedded database and this installation's local secrets.
            os.environ["HOOKLEDGER_DATABASE_URL"] = url
            for setting, values in provider_secrets(settings).values():
                if values and not os.environ.get(setting):
                    os.environ[setting] = values[0]
        where = f"embedded Postgres in {settings.data_dir}" if settings.embedded else "configured"
        print(f"hookledger listening on http://{args.host}:{args.port} (database: {where})",
              flush=True)  # fmt: skip
        # uvicorn drains on SIGTERM, then re-raises it: turn that into a normal
        # exit so the embedded Postgres below is stopped too.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(
            "hookledger.wiring:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers if args.workers > 1 else None,
            access_log=False,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    return 0


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, each counts in its own files there and a scrape
    of any worker sums them (prometheus_client's multiprocess mode)."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="hookledger-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        yield


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.migrations import migrate

    async def run(url: str) -> int:
        from events.connector import Database

        db = Database(url, max_size=1)
        await db.open()
        try:
            applied = await migrate(db)
        finally:
            await db.close()
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
        if not applied:
            print("the database is up to date")
        return 0

    with _database_url(settings) as url:
        return asyncio.run(run(url))


def _history(settings: Settings, args: argparse.Namespace) -> int:
    from api.routes.reads import audit_view
    from events.store import read_stream

    async def run(url: str) -> int:
        async with _database(url) as db:
            events = await read_stream(db, f"order-{args.order_id}")
        if not events:
            print(f"no events for order {args.order_id!r}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps([audit_view(e) for e in events], indent=2))
            return 0
        rows = [("VER", "POSITION", "RECORDED_AT", "PROVIDER", "TYPE", "EVENT_ID", "HASH")]
        for view in map(audit_view, events):
            rows.append((
                str(view["version"]), str(view["position"]), view["recorded_at"],
                view["provider"], view["type"], view["event_id"], view["hash"][:16],
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        return 0

    with _database_url(settings) as url:
        return asyncio.run(run(url))


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from events.errors import ChainBroken
    from events.store import verify_chains

    async def run(url: str) -> int:
        async with _database(url) as db:
            try:
                report = await verify_chains(db, args.stream)
            except ChainBroken as exc:
                print(f"BROKEN: stream {exc.stream} at version {exc.version}: {exc.reason}")
                return 1
        print(f"ok: {report.events} events in {report.streams} streams verify")
        return 0

    with _database_url(settings) as url:
        return asyncio.run(run(url))


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.exports import bigquery_config, export_policy
    from hookledger.logs import configure

    if (args.to == "parquet") != (args.directory is not None):
        print("hookledger: export --to parquet takes a DIRECTORY, --to bigquery none",
              file=sys.stderr)  # fmt: skip
        return 2
    policy = export_policy(settings)
    config = None
    if args.to == "bigquery" and (config := bigquery_config(settings)) is None:
        print("hookledger: HOOKLEDGER_BIGQUERY_PROJECT is not set", file=sys.stderr)
        return 2
    # A one-off run shows a progress bar: only warnings would interrupt it.
    configure(settings.log_level if args.follow else "WARNING")

    async def run(url: str) -> int:
        from events.errors import CheckpointMoved, DestinationRefused, DestinationUnavailable
        from hookledger.exports import export_to_bigquery, export_to_parquet

        async with _database(url) as db:
            try:
                if config is not None:
                    return await export_to_bigquery(db, config, policy, settings, args)
                return await export_to_parquet(db, args.directory, policy, settings, args)
            except (DestinationRefused, DestinationUnavailable, CheckpointMoved) as exc:
                print(f"hookledger: export failed: {exc.detail}", file=sys.stderr)
                return 1

    with _database_url(settings) as url:
        return asyncio.run(run(url))


# -- send ----------------------------------------------------------------------


def _send(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from api.signatures import hmac_sha256_hex, standard_webhooks_sign
    from hookledger.samples import SAMPLES, sample_body
    from hookledger.secrets import provider_secrets

    samples = SAMPLES.get(args.provider)
    if samples is None:
        print(f"unknown provider {args.provider!r}; known: {', '.join(SAMPLES)}", file=sys.stderr)
        return 2
    if args.list:
        for name in samples:
            print(name)
        return 0
    order_id = args.order or f"demo-{uuid.uuid4().hex[:8]}"
    if args.body == "-":
        body = sys.stdin.buffer.read()
    elif args.body and Path(args.body).is_file():
        body = Path(args.body).read_bytes()
    else:
        name = args.body or next(iter(samples))
        if name not in samples:
            print(f"no sample {name!r} for {args.provider}; try --list", file=sys.stderr)
            return 2
        body = sample_body(args.provider, name, order_id)
        print(f"order {order_id}: sending sample {name}", file=sys.stderr)

    setting, secrets = provider_secrets(settings)[args.provider]
    if not secrets:
        print(f"no secret for {args.provider}: set {setting}", file=sys.stderr)
        return 2
    headers = {"content-type": "application/json"}
    if args.provider == "veriff":
        headers["x-hmac-signature"] = hmac_sha256_hex(secrets[0], body)
    else:
        msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        headers.update({
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": standard_webhooks_sign(secrets[0], msg_id, stamp, body),
        })  # fmt: skip
    url = f"{args.url.rstrip('/')}/api/v1/{args.provider}/webhook"
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.text}")
    return 0 if response.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
