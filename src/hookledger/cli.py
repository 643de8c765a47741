"""The ``hookledger`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import io
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookledger.settings import Settings, SettingsError, from_env

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from events.connector import Database
    from hookledger.background_process import BackgroundProcess

log = logging.getLogger("hookledger")

# Set by serve for the background process it starts: that process ends when
# serve is gone (killed, so it could not stop it).
PARENT_ENV = "HOOKLEDGER_SERVE_PID"
# How far serve's background process stands back from its intake processes.
BACKGROUND_NICENESS = 19


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
    except BrokenPipeError:
        # The reader went away (`hookledger status 1 | head`): stop quietly, and
        # keep Python from failing again as it flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookledger", description="Webhooks and orders as an append-only event ledger."
    )
    parser.add_argument("--version", action="version", version=f"hookledger {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    info = commands.add_parser(
        "info", help="version, database, data folder, timers, safe mode, secrets set"
    )
    info.add_argument("--json", action="store_true", help="JSON instead of lines")
    info.set_defaults(run=_info)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="intake processes (default: one per CPU; 1 on Cloud Run). With one, the "
        "background work runs inside it; with more, in one process of its own that "
        "serve starts again whenever it ends",
    )
    serve.add_argument(
        "--no-workers",
        action="store_true",
        help="HTTP only: leave projections, policy, timers and actions to `hookledger worker`",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker", help="run the projections, the countdown policy, the timers and the actions"
    )
    worker.set_defaults(run=_worker)

    status = commands.add_parser("status", help="print an order's projected state")
    status.add_argument("order_id")
    status.add_argument("--json", action="store_true", help="JSON instead of text")
    status.set_defaults(run=_status)

    replay = commands.add_parser("replay", help="rebuild projections from the ledger")
    replay.add_argument(
        "name", nargs="?", help="the projection (orders, verifications, countdowns)"
    )
    replay.add_argument("--all", action="store_true", help="every projection")
    replay.set_defaults(run=_replay)

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.set_defaults(run=_migrate)

    history = commands.add_parser("history", help="print an order's audit history, or any stream's")
    history.add_argument(
        "order_id",
        metavar="ORDER_OR_STREAM",
        help="an order id (its stream is order-ID), or a stream's full name as "
        "`verify` and the audit read show it (veriff-evt_1, order-1001)",
    )
    history.add_argument("--json", action="store_true", help="JSON instead of a table")
    history.set_defaults(run=_history)

    verify = commands.add_parser(
        "verify", help="recompute every hash chain, the Merkle tree and its checkpoints"
    )
    verify.add_argument("--stream", help="only this stream's chain (e.g. order-1001)")
    verify.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="also check against a signed checkpoint you kept")  # fmt: skip
    verify.add_argument("--key", help="the checkpoints' verifier key (or a file holding it); "
                        "default: the configured key")  # fmt: skip
    verify.add_argument("--signatures", action="store_true",
                        help="also check every stored delivery's signature anew")  # fmt: skip
    verify.set_defaults(run=_verify)

    checkpoint = commands.add_parser(
        "checkpoint", help="sign the ledger's tree now and print the checkpoint"
    )
    checkpoint.add_argument("--key", action="store_true", help="print the public key instead")
    checkpoint.set_defaults(run=_checkpoint)

    evidence = commands.add_parser(
        "evidence", help="write an order's offline evidence (events, proofs, checkpoint)"
    )
    evidence.add_argument("order_id")
    evidence.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    evidence.set_defaults(run=_evidence)

    check = commands.add_parser(
        "verify-evidence", help="check an evidence file, with no service or database"
    )
    check.add_argument("file", type=Path)
    check.add_argument("--key", help="the verifier key you hold (or a file holding it)")
    check.set_defaults(run=_verify_evidence)

    send = commands.add_parser("send", help="sign a body and post it to a running service")
    send.add_argument(
        "provider",
        nargs="?",
        help="a built-in provider (veriff, stripe, ...) or a source of "
        "HOOKLEDGER_PROVIDERS_FILE; an unknown name lists them",
    )
    send.add_argument(
        "body",
        nargs="?",
        help="a sample name (see --list), a file, or - for stdin; default: the first sample",
    )
    send.add_argument("--order", help="order id for a sample (default: a new one)")
    send.add_argument("--url", default="http://127.0.0.1:8080", help="the service's base URL")
    send.add_argument(
        "--list",
        action="store_true",
        help="list the built-in samples (of PROVIDER, or of every provider)",
    )
    send.add_argument(
        "--topic", help="shopify: the X-Shopify-Topic (default: the sample's, or orders/create)"
    )
    send.set_defaults(run=_send)

    secret = commands.add_parser(
        "secret",
        help="print the secret a provider's deliveries are signed with here "
        "(the one `send` uses), to sign a request by hand",
    )
    secret.add_argument("provider", help="a built-in provider (veriff, stripe, ...)")
    secret.set_defaults(run=_secret)

    selftest = commands.add_parser(
        "selftest", help="check every subsystem; exit status 1 on a critical error"
    )
    selftest.add_argument("--json", action="store_true", help="JSON instead of a table")
    selftest.set_defaults(run=_selftest)

    dead = commands.add_parser(
        "dead-letters", help="list the actions (and Cloud Tasks) that gave up"
    )
    dead.add_argument("--json", action="store_true", help="JSON instead of a table")
    dead.set_defaults(run=_dead_letters)
    dead_commands = dead.add_subparsers(metavar="COMMAND")
    retry = dead_commands.add_parser("retry", help="queue a dead action again")
    retry.add_argument("key", help="the action's idempotency key")
    retry.add_argument(
        "--now", action="store_true", help="also run it here, without waiting for a worker"
    )
    retry.set_defaults(run=_retry_dead_letter)

    quarantine = commands.add_parser(
        "quarantine", help="list the events a consumer could not apply and set aside"
    )
    quarantine.add_argument("--json", action="store_true", help="JSON instead of a table")
    quarantine.set_defaults(run=_quarantine)
    quarantine_commands = quarantine.add_subparsers(metavar="COMMAND")
    again = quarantine_commands.add_parser(
        "retry", help="apply set-aside events again; those that now apply leave the quarantine"
    )
    again.add_argument("--consumer", help="only this consumer's (e.g. projection.countdowns)")
    again.add_argument("positions", nargs="*", type=int, metavar="POSITION",
                       help="only these positions (default: all)")  # fmt: skip
    again.set_defaults(run=_retry_quarantined)

    personal = commands.add_parser(
        "personal-data",
        help="which values are personal and how long each is kept (the policy, and what "
        "it finds in the sample bodies; never a value)",
    )
    personal.add_argument("--json", action="store_true", help="JSON instead of lines")
    personal.set_defaults(run=_personal_data)

    erase = commands.add_parser(
        "erase", help="erase one person's personal data (by order or e-mail address); "
        "the ledger records that it was done, never what"
    )  # fmt: skip
    whose = erase.add_mutually_exclusive_group(required=True)
    whose.add_argument("--order", metavar="ID", help="the order whose customer to erase")
    whose.add_argument("--email", metavar="ADDRESS",
                       help="every order of this e-mail address (found by keyed hash)")  # fmt: skip
    erase.add_argument("--reason", default="erasure requested",
                       help="why (recorded in the ledger; no personal data here)")  # fmt: skip
    erase.add_argument("--by", default=None, help="who asks (default: this machine's user)")
    erase.add_argument("--json", action="store_true", help="JSON instead of lines")
    erase.set_defaults(run=_erase)

    retention = commands.add_parser(
        "retention", help="erase the personal values whose retention ran out (the background "
        "sweep does it every minute); --dry-run shows what would go next"
    )  # fmt: skip
    retention.add_argument("--dry-run", action="store_true", help="show, change nothing")
    retention.add_argument("--limit", type=int, default=50, help="subjects shown (--dry-run)")
    retention.add_argument("--json", action="store_true", help="JSON instead of a table")
    retention.set_defaults(run=_retention)

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
def _database_url(
    settings: Settings, *, create: bool = False, watch: bool = False
) -> Iterator[str]:
    """The configured database, or the embedded one started for the duration
    (made first if ``create``: only `serve` and `migrate` make one)."""
    if settings.database_url:
        yield settings.database_url
        return
    from hookledger.embedded import EmbeddedPostgres, installed

    embedded = EmbeddedPostgres(settings.data_dir)
    if not create and not embedded.exists():
        installed()  # without pgserver, what to install comes first
        raise SettingsError(no_database(settings))
    try:
        url = embedded.start()
        if watch:
            embedded.watch()
        yield url
    finally:
        embedded.stop()


@asynccontextmanager
async def _database(url: str, *, migrate: bool) -> AsyncIterator[Database]:
    from events.connector import Database
    from hookledger.migrations import migrate as apply_migrations

    db = Database(url, max_size=2)
    await db.open()
    try:
        if migrate:
            await apply_migrations(db)
        yield db
    finally:
        await db.close()


def no_database(settings: Settings) -> str:
    """What a command says where no embedded database exists."""
    return (
        f"no hookledger database in {settings.data_dir}: `hookledger serve` makes one "
        "there; to use another, set HOOKLEDGER_DATA_DIR to its data folder or "
        "HOOKLEDGER_DATABASE_URL to a Postgres (`hookledger info` shows what is used)"
    )


def _on_url(
    settings: Settings, run: Callable[[str], Coroutine[Any, Any, int]], *, create: bool = False
) -> int:
    """Run a command's ``run`` to its exit status, on the URL of the database
    (the embedded one started for it and stopped after)."""
    with _database_url(settings, create=create) as url:
        return asyncio.run(run(url))


def _on_database(
    settings: Settings,
    run: Callable[[Database], Coroutine[Any, Any, int]],
    *,
    migrate: bool = True,
    create: bool = False,
) -> int:
    """Run a command's ``run`` to its exit status with the database open
    (migrated first unless ``migrate`` is false) and closed after."""

    async def opened(url: str) -> int:
        async with _database(url, migrate=migrate) as db:
            return await run(db)

    return _on_url(settings, opened, create=create)


def _version() -> str:
    from hookledger import __version__

    return __version__


def _info(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.embedded import EmbeddedPostgres
    from hookledger.info import describe

    lines = describe(settings, EmbeddedPostgres(settings.data_dir).exists())
    if args.json:
        print(json.dumps(dict(lines), indent=2))
        return 0
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label:<{width}}  {value}")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from hookledger.checkpoint_key import local_key_setting
    from hookledger.http_protocol import DeadlineProtocol
    from hookledger.logs import configure
    from hookledger.secrets import provider_secrets
    from hookledger.sources import load_sources

    configure(settings.log_level, settings.gcp_project)
    workers = args.workers if args.workers is not None else default_workers(os.environ)
    if workers < 1:
        print("hookledger: --workers must be at least 1", file=sys.stderr)
        return 2
    background = settings.background and not args.no_workers
    # One intake process keeps its background work inside (as on Cloud Run);
    # several leave it to one process of its own, so that it runs once.
    own_process = background and workers > 1
    if not background or own_process:
        os.environ["HOOKLEDGER_BACKGROUND"] = "false"
    load_sources(settings.providers_file)  # a bad file stops the start here, clearly
    with (
        _database_url(settings, create=True, watch=True) as url,
        _shared_dir(workers > 1 or own_process) as shared,
    ):
        if settings.embedded:
            # The workers read their settings from the environment: hand them
            # the embedded database and this installation's local secrets.
            os.environ["HOOKLEDGER_DATABASE_URL"] = url
            for setting, values in provider_secrets(settings).values():
                if values and not os.environ.get(setting):
                    os.environ[setting] = values[0]
            if not settings.checkpoint_key:
                os.environ["HOOKLEDGER_CHECKPOINT_KEY"] = local_key_setting(settings)
        where = f"embedded Postgres in {settings.data_dir}" if settings.embedded else "configured"
        shape = f"{workers} intake process{'es' if workers > 1 else ''}"
        if own_process:
            shape += " and a background process"
        elif not background:
            shape += ", no background work"
        print(f"hookledger listening on http://{args.host}:{args.port} (database: {where}; "
              f"{shape})", flush=True)  # fmt: skip
        if settings.embedded:
            # The local operator signs in to the console without a token to set.
            token = asyncio.run(_one_time_link(url))
            print(f"console: http://{args.host}:{args.port}/console/sign-in?once={token} "
                  "(operator; one use, within 15 minutes)", flush=True)  # fmt: skip
        # uvicorn drains on SIGTERM, then re-raises it: turn that into a normal
        # exit so the embedded Postgres below is stopped too.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        side = _background_process(shared) if own_process and shared is not None else None
        try:
            uvicorn.run(
                "hookledger.wiring:app_from_env",
                factory=True,
                host=args.host,
                port=args.port,
                workers=workers if workers > 1 else None,
                access_log=False,
                # Nothing here reads the client's address, and behind Cloud Run's
                # front end the forwarding headers come from an address uvicorn
                # would not trust anyway: skip that middleware on every request.
                proxy_headers=False,
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=30,
                # Each request must arrive whole in time (HOOKLEDGER_REQUEST_TIMEOUT),
                # and connections stay below the file limit: beyond the cap, they
                # get 503 at once instead of the process running out of descriptors.
                http=DeadlineProtocol,
            )
        finally:
            if side is not None:
                side.stop()
    return 0


async def _one_time_link(url: str) -> str:
    from hookledger.console_reads import ConsoleReads

    async with _database(url, migrate=True) as db:
        return await ConsoleReads(db).make_link()


def default_workers(environ: Mapping[str, str]) -> int:
    """One intake process per CPU, but one on Cloud Run (K_SERVICE is set there),
    where instances, not processes, are what scales."""
    if environ.get("K_SERVICE"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _background_process(shared: Path) -> BackgroundProcess:
    """`hookledger worker` beside the intake processes, started now and again
    whenever it ends; its metrics and state are shared through ``shared``."""
    from hookledger.background_process import STATUS_ENV, BackgroundProcess

    status = shared / "background.json"
    os.environ[STATUS_ENV] = str(status)
    env = {**os.environ, "HOOKLEDGER_BACKGROUND": "true", PARENT_ENV: str(os.getpid())}
    env.pop(STATUS_ENV)
    command = [sys.executable, "-m", "hookledger.cli", "worker"]
    process = BackgroundProcess(command, env, status)
    process.start()
    return process


@contextmanager
def _shared_dir(needed: bool) -> Iterator[Path | None]:
    """With several processes: a folder where each counts its metrics in its own
    files, summed by a scrape of any (prometheus_client's multiprocess mode), and
    where serve keeps its background process's state."""
    if not needed:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="hookledger-serve-") as directory:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics = Path(directory) / "metrics"
            metrics.mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        yield Path(directory)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.logs import configure
    from hookledger.wiring import build_worker

    configure(settings.log_level, settings.gcp_project)
    parent = int(os.environ.get(PARENT_ENV) or 0)
    if parent:
        # Beside serve's intake processes: under load the intake comes first
        # (a provider waits for its answer; an event waits in the ledger), and
        # the background work takes the cores back once the load ends.
        _stand_back(BACKGROUND_NICENESS)
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

    async def run(url: str) -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        runtime = build_worker(settings, url, multiprocess_metrics=multiprocess)
        assert runtime.background is not None
        supervisor = runtime.background.supervisor
        async with runtime.running():
            print("hookledger worker running", flush=True)
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=1.0)
                down = supervisor.down()
                if down:
                    # No /health to report it: end, so that the platform starts
                    # a fresh process and its restart shows.
                    log.error("background job down: the worker exits", extra={"jobs": down})
                    return 1
                if parent and os.getppid() != parent:
                    log.error("serve is gone: its background process stops")
                    return 1
        return 0

    return _on_url(settings, run)


def _stand_back(niceness: int) -> None:
    """Lower this process's CPU priority. serve starts it in a session of its
    own, and Linux weighs each session (autogroup) alike whatever its processes'
    nice values: the session's own niceness is set too, where the kernel has one."""
    os.nice(niceness)
    autogroup = Path("/proc/self/autogroup")
    if autogroup.exists():
        try:
            autogroup.write_text(str(niceness))
        except OSError as exc:
            log.info("could not lower the session's CPU priority", extra={"error": str(exc)})


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.migrations import migrate

    async def run(db: Database) -> int:
        applied = await migrate(db)
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
        if not applied:
            print("the database is up to date")
        return 0

    return _on_database(settings, run, migrate=False, create=True)


def _history(settings: Settings, args: argparse.Namespace) -> int:
    from events.evidence import event_view
    from events.store import read_stream

    async def run(db: Database) -> int:
        # An order's id first (the common case); failing that, a stream's name.
        events = await read_stream(db, f"order-{args.order_id}")
        if not events:
            events = await read_stream(db, args.order_id)
        if not events:
            print(f"no events for order {args.order_id!r} nor in a stream of that name",
                  file=sys.stderr)  # fmt: skip
            return 1
        if args.json:
            print(json.dumps([event_view(e) for e in events], indent=2))
            return 0
        rows = [("VER", "POSITION", "RECORDED_AT", "PROVIDER", "TYPE", "EVENT_ID", "HASH",
                 "PERSONAL")]  # fmt: skip
        for view in map(event_view, events):
            rows.append((
                str(view["version"]), str(view["position"]), view["recorded_at"],
                view["provider"], view["type"], view["event_id"], view["hash"][:16],
                _personal_state(view.get("personal") or []),
            ))  # fmt: skip
        _print_table(rows)
        return 0

    return _on_database(settings, run)


def _personal_state(entries: list[dict[str, Any]]) -> str:
    """How many of an event's personal values are held and erased."""
    if not entries:
        return "-"
    erased = sum(1 for e in entries if e["state"] == "erased")
    held = len(entries) - erased
    return ", ".join(f"{n} {state}" for n, state in ((held, "held"), (erased, "erased")) if n)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from projections.status import order_status

    async def run(db: Database) -> int:
        status = await order_status(db, args.order_id)
        if status is None:
            print(f"no order {args.order_id!r}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(status, indent=2))
            return 0
        for section in ("order", "verification", "countdown"):
            print(f"{section}:")
            if not status[section]:
                print("  (none)")
            for key, value in (status[section] or {}).items():
                print(f"  {key:<16} {_shown(value)}")
        print("actions:")
        if not status["actions"]:
            print("  (none)")
        for action in status["actions"]:
            print("  " + "  ".join(f"{k}={_shown(v)}" for k, v in action.items() if v is not None))
        return 0

    return _on_database(settings, run)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from projections.projectors import PROJECTIONS
    from projections.replay import ledger_head, replay

    if args.all == bool(args.name):
        print("hookledger: name one projection or give --all", file=sys.stderr)
        return 2
    if args.name and args.name not in PROJECTIONS:
        print(f"hookledger: no projection {args.name!r}; known: {', '.join(PROJECTIONS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    chosen = list(PROJECTIONS.values()) if args.all else [PROJECTIONS[args.name]]

    async def run(db: Database) -> int:
        from hookledger.progress import progress

        total = await ledger_head(db)
        with progress("replay", total) as bar:
            report = await replay(db, chosen, bar)
        rate = report.events / report.seconds if report.seconds else 0.0
        print(f"rebuilt {', '.join(report.projections)}: {_counted(report.events, 'event')} "
              f"of {_counted(report.orders, 'order')} up to position {report.position} in "
              f"{report.seconds:.1f} s ({rate:,.0f} events/s)")  # fmt: skip
        if report.set_aside:
            print(f"{_counted(report.set_aside, 'event')} could not be applied and are set "
                  "aside: see `hookledger quarantine`")  # fmt: skip
        return 0

    return _on_database(settings, run)


def _shown(value: object) -> str:
    """A value as a person reads it: lists comma-separated, nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(_shown, value)) if value else "(none)"
    return str(value)


def _counted(count: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from events.errors import ChainBroken, HookledgerError
    from events.store import verify_chains
    from hookledger.operations import record_verify
    from hookledger.proof_commands import read_kept, verify_history, verify_signatures

    try:
        kept_text = read_kept(args.checkpoint)
    except OSError as exc:
        raise SettingsError(f"cannot read {args.checkpoint}: {exc.strerror}") from None
    kept = (args.checkpoint, kept_text) if kept_text is not None else None

    async def check(db: Database) -> tuple[int, int]:
        """The exit status, and how many events were checked."""
        try:
            report = await verify_chains(db, args.stream)
        except ChainBroken as exc:
            print(f"BROKEN: stream {exc.stream} at version {exc.version}: {exc.reason}")
            return 1, 0
        if args.stream is not None and report.streams == 0:
            # Nothing verified is no proof: a mistyped name must not read as "ok".
            print(f"no stream {args.stream!r} in the ledger", file=sys.stderr)
            return 1, 0
        print(f"ok: {_counted(report.events, 'event')} in "
              f"{_counted(report.streams, 'stream')} verify")  # fmt: skip
        code = 0
        if args.stream is None or kept is not None:  # the tree is the whole ledger's
            code = await verify_history(db, settings, kept, args.key)
        if args.signatures:
            code = max(code, await verify_signatures(db, settings))
        return code, report.events

    async def run(db: Database) -> int:
        printed: list[str] = []
        with _tee(printed):
            code, events = await check(db)
        if args.stream is None and code in (0, 1):
            # The whole ledger's outcome, for /metrics and its alert.
            broken = next((line for line in printed if line.startswith("BROKEN")), "")
            detail = broken or ("failed: see `hookledger verify`" if code else "held")
            try:
                await record_verify(db, code == 0, events, detail)
            except HookledgerError as exc:  # a read-only role may verify; it cannot record
                print(f"hookledger: the outcome was not recorded: {exc.detail}", file=sys.stderr)
        return code

    return _on_database(settings, run)


@contextmanager
def _tee(kept: list[str]) -> Iterator[None]:
    """Print as usual, and keep each line printed meanwhile in ``kept``."""

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            kept.extend(text.splitlines())
            return original.write(text)

        def flush(self) -> None:
            original.flush()

    original = sys.stdout
    sys.stdout = Tee()
    try:
        yield
    finally:
        sys.stdout = original


def _checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.proof_commands import checkpoint

    return _on_database(settings, partial(checkpoint, settings=settings, show_key=args.key))


def _evidence(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.proof_commands import evidence, write_evidence

    async def run(db: Database) -> int:
        code, document = await evidence(db, settings, args.order_id)
        if code == 0:
            write_evidence(document, args.output)
        return code

    return _on_database(settings, run)


def _verify_evidence(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.proof_commands import verify_evidence

    return verify_evidence(args.file, args.key)


def _selftest(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.background import task_queue
    from hookledger.logs import configure
    from hookledger.secrets import SecretStore
    from hookledger.selftest import ERROR, SelfTest
    from hookledger.wiring import action_settings, build_providers

    configure(settings.log_level, settings.gcp_project)
    secrets = SecretStore.from_settings(settings)
    providers = build_providers(settings, secrets)
    actions = action_settings(settings, secrets)

    async def run(db: Database) -> int:
        queue = task_queue(settings) if settings.timer_backend == "cloudtasks" else None
        try:
            report = await SelfTest(settings, db, providers, actions, secrets, queue).run()
        finally:
            if queue is not None:
                await queue.close()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            rows = [("CHECK", "STATUS", "REASON")]
            rows += [(name, c["status"], c["reason"]) for name, c in report["checks"].items()]
            _print_table(rows)
            print(f"overall: {report['status']}")
        return 1 if report["status"] == ERROR else 0

    # No migration here: whether they are applied is one of the checks.
    return _on_database(settings, run, migrate=False)


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from scheduler.actions.queue import dead_letters
    from scheduler.cloudtasks import dead_tasks

    async def run(db: Database) -> int:
        # Dead actions, and Cloud Tasks that gave up (their timers still
        # fire through the reconciler; these are for the operator to see).
        dead = sorted([*await dead_letters(db), *await dead_tasks(db)],
                      key=lambda d: (d.updated_at, d.key))  # fmt: skip
        if args.json:
            print(json.dumps([
                {**msgspec.structs.asdict(d), "updated_at": d.updated_at.isoformat()}
                for d in dead
            ], indent=2))  # fmt: skip
            return 0
        if not dead:
            print("no dead letters")
            return 0
        rows = [("KEY", "KIND", "ORDER", "ATTEMPTS", "LAST_ERROR", "UPDATED_AT")]
        for d in dead:
            error = (d.last_error or "").replace("\n", " ")
            rows.append((
                d.key, d.kind, d.order_id, str(d.attempts),
                error if len(error) <= 80 else error[:77] + "...",
                d.updated_at.isoformat(timespec="seconds"),
            ))  # fmt: skip
        _print_table(rows)
        return 0

    return _on_database(settings, run)


def _retry_dead_letter(settings: Settings, args: argparse.Namespace) -> int:
    from events.appender import Appender
    from hookledger.console_jobs import retry_dead_letter
    from hookledger.logs import configure
    from hookledger.personal_data import personal_cutter
    from hookledger.wiring import action_settings
    from scheduler.actions.queue import action_state
    from scheduler.actions.worker import ActionWorker

    if args.now and settings.safe_mode:
        # It would be recorded as a dry run and count as done, never sent.
        print(
            "safe mode is on (HOOKLEDGER_SAFE_MODE): --now would only record a dry run; "
            "set HOOKLEDGER_SAFE_MODE=false, or leave it to the running service",
            file=sys.stderr,
        )
        return 2

    async def run(db: Database) -> int:
        # Recorded in the ledger as the console's retries are (who, from where).
        if not await retry_dead_letter(db, args.key, f"{getpass.getuser()} (cli)", "cli"):
            found = await action_state(db, args.key)
            state = f"it is {found[0]}" if found else "there is no such action"
            print(f"{args.key}: not a dead letter ({state})", file=sys.stderr)
            return 1
        if not args.now:
            print(f"{args.key}: queued again; a running worker performs it")
            return 0
        appender = Appender(db, group_commit=False, cutter=personal_cutter(settings))
        worker = ActionWorker(db, appender, action_settings(settings))
        try:
            if not await worker.run_once(key=args.key):
                print(f"{args.key}: queued again; a worker took it first")
                return 0
        finally:
            await worker.close()
        state, attempts, error = await action_state(db, args.key) or ("?", 0, None)
        print(f"{args.key}: {state} after attempt {attempts}" + (f": {error}" if error else ""))
        return 0 if state == "done" else 1

    configure(settings.log_level, settings.gcp_project)
    return _on_database(settings, run)


def _quarantine(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from events.quarantine import quarantined

    async def run(db: Database) -> int:
        items = await quarantined(db)
        if args.json:
            print(json.dumps([
                {**msgspec.structs.asdict(q), "first_seen_at": q.first_seen_at.isoformat(),
                 "last_seen_at": q.last_seen_at.isoformat()}
                for q in items
            ], indent=2))  # fmt: skip
            return 0
        if not items:
            print("no events set aside")
            return 0
        rows = [("CONSUMER", "POSITION", "PROVIDER", "TYPE", "STREAM", "ATTEMPTS", "ERROR",
                 "LAST_SEEN_AT")]  # fmt: skip
        for q in items:
            rows.append((
                q.consumer, str(q.position), q.provider, q.type, q.stream, str(q.attempts),
                q.error if len(q.error) <= 80 else q.error[:77] + "...",
                q.last_seen_at.isoformat(timespec="seconds"),
            ))  # fmt: skip
        _print_table(rows)
        return 0

    return _on_database(settings, run)


def _retry_quarantined(settings: Settings, args: argparse.Namespace) -> int:
    from events.appender import Appender
    from events.quarantine import Applies, retry
    from hookledger.background import countdown_config
    from hookledger.logs import configure
    from projections.projectors import PROJECTIONS, ProjectionConsumer
    from scheduler.policy import CountdownPolicy

    async def run(db: Database) -> int:
        policy = CountdownPolicy(Appender(db, group_commit=False), countdown_config(settings))
        consumers: dict[str, Applies] = {policy.name: policy}
        for projection in PROJECTIONS.values():
            consumers[projection.consumer_name] = ProjectionConsumer(projection)
        if args.consumer and args.consumer not in consumers:
            print(f"hookledger: no consumer {args.consumer!r}; known: {', '.join(consumers)}",
                  file=sys.stderr)  # fmt: skip
            return 2
        outcomes = await retry(db, consumers, consumer=args.consumer,
                               positions=args.positions)  # fmt: skip
        if not outcomes:
            print("nothing to retry")
        for o in outcomes:
            done = "applied, no longer set aside" if o.applied else f"still fails: {o.error}"
            print(f"{o.consumer} position {o.position}: {done}")
        return 0 if all(o.applied for o in outcomes) else 1

    configure(settings.log_level, settings.gcp_project)
    return _on_database(settings, run)


def _personal_data(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.personal_data import describe, personal_policy

    described = describe(personal_policy(settings))
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    source = settings.personal_data_policy or "the built-in default"
    print(f"personal-data policy: {source}")
    print("(applied to every event as it is recorded: hookledger erase, hookledger retention)")
    rows = [("PROVIDER", "TYPES", "KEEP", "FROM", "PERSONAL PATHS")]
    rows += [(r["provider"], ",".join(r["types"]), r["keep"], r["from"], ", ".join(r["personal"]))
             for r in described["rules"]]  # fmt: skip
    _print_table(rows)
    print()
    found_rows: list[tuple[str, ...]] = [("SAMPLE", "PERSONAL VALUES FOUND (kept for)")]
    for sample in described["samples"]:
        found = ", ".join(f"{p['path']} ({p['keep']} from {p['from']})" for p in sample["personal"])
        found_rows.append((f"{sample['provider']} {sample['type']}", found or "none"))
    _print_table(found_rows)
    return 0


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    from api.rejections import NotFound
    from hookledger.erasures import erase_request

    async def run(db: Database) -> int:
        by = args.by or f"{getpass.getuser()} (cli)"
        try:
            done = await erase_request(db, args.order, args.email, args.reason, by, "cli")
        except NotFound as exc:
            print(exc.detail, file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(done, indent=2, default=str))
            return 0
        if not done["subjects"]:
            print("nothing to erase: no order holds that address (never seen, or erased already)")
        for item in done["subjects"]:
            if item["event_id"] is None:
                print(f"{item['subject']}: nothing left to erase (erased before)")
            else:
                print(f"{item['subject']}: erased {_counted(item['values'], 'value')} of "
                      f"{_counted(item['events'], 'event')} ({', '.join(item['classes'])}); "
                      f"recorded as {item['event_id']}")  # fmt: skip
            if item["cancelled_emails"]:
                cancelled = _counted(item["cancelled_emails"], "e-mail")
                print(f"  {cancelled} not sent: cancelled")
            if item.get("recorded_whole"):
                whole = _counted(item["recorded_whole"], "event")
                print(f"  warning: {whole} recorded before this version held personal values "
                      "apart keep them (see the README)")  # fmt: skip
        return 0

    return _on_database(settings, run)


def _retention(settings: Settings, args: argparse.Namespace) -> int:
    from personal.retention import arm, peek, retention_state, sweep

    async def run(db: Database) -> int:
        if not args.dry_run:
            done = await sweep(db)
            print(f"erased {_counted(done.values, 'value')} of "
                  f"{_counted(done.subjects, 'subject')} whose retention ran out")  # fmt: skip
            return 0
        # Arming is bookkeeping, not erasure: a dry run may show what it arms.
        await arm(db)
        due = await peek(db, args.limit)
        _, due_now, waiting, lag = await retention_state(db)
        if args.json:
            print(json.dumps({
                "due_now": due_now, "waiting_for_countdown": waiting, "lag_seconds": lag,
                "next": [{"subject": d.subject, "values": d.values, "classes": d.classes,
                          "due_since": d.due_since.isoformat()} for d in due],
            }, indent=2))  # fmt: skip
            return 0
        print(f"{_counted(due_now, 'value')} due now; {_counted(waiting, 'value')} wait for "
              f"their order's countdown to close")  # fmt: skip
        rows = [("SUBJECT", "VALUES", "CLASSES", "DUE SINCE")]
        rows += [(d.subject, str(d.values), ", ".join(d.classes), d.due_since.isoformat())
                 for d in due]  # fmt: skip
        _print_table(rows)
        return 0

    return _on_database(settings, run)


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

    async def run(db: Database) -> int:
        from events.errors import CheckpointMoved
        from exporter.errors import DestinationRefused, DestinationUnavailable
        from hookledger.exports import export_to_bigquery, export_to_parquet

        try:
            if config is not None:
                return await export_to_bigquery(db, config, policy, settings, args)
            return await export_to_parquet(db, args.directory, policy, settings, args)
        except (DestinationRefused, DestinationUnavailable, CheckpointMoved) as exc:
            print(f"hookledger: export failed: {exc.detail}", file=sys.stderr)
            return 1

    return _on_database(settings, run)


# -- send ----------------------------------------------------------------------


def _require_local_secrets(settings: Settings) -> None:
    """On the embedded database, refuse to go on where `serve` has made no local
    secrets: secrets made up here would not be the running service's (a 401)."""
    from hookledger.secrets import LOCAL_SECRETS_FILE

    if settings.embedded and not (settings.data_dir / LOCAL_SECRETS_FILE).is_file():
        raise SettingsError(no_database(settings))


def _secret(settings: Settings, args: argparse.Namespace) -> int:
    from hookledger.secrets import provider_secrets

    _require_local_secrets(settings)
    secrets = provider_secrets(settings)
    if args.provider not in secrets:
        print(f"unknown provider {args.provider!r}; known: {', '.join(secrets)}",
              file=sys.stderr)  # fmt: skip
        return 2
    setting, values = secrets[args.provider]
    if not values:
        print(f"no secret for {args.provider}: set {setting}", file=sys.stderr)
        return 1
    print(values[0])
    return 0


def _send(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    _require_local_secrets(settings)

    from api.providers import BUILT_IN
    from api.providers.base import Adapter, CannotSign
    from hookledger.samples import SAMPLES, sample_body
    from hookledger.secrets import local_secrets, provider_secrets
    from hookledger.sources import load_sources

    configured: dict[str, tuple[str, tuple[str, ...], type[Adapter]]] = {
        name: (setting, secrets, BUILT_IN[name])
        for name, (setting, secrets) in provider_secrets(settings).items()
    }
    for name, source in load_sources(settings.providers_file).items():
        configured[name] = (source.secret_setting, source.secrets, type(source))
    if args.provider is None and args.list:
        for provider in configured:
            for name in SAMPLES.get(provider, {}):
                print(f"{provider} {name}")
        return 0
    if args.provider not in configured:
        asked = (
            "no provider given" if args.provider is None else f"unknown provider {args.provider!r}"
        )
        print(f"{asked}; known: {', '.join(configured)}", file=sys.stderr)
        return 2
    samples = SAMPLES.get(args.provider, {})
    if args.list:
        for name in samples:
            print(name)
        return 0
    order_id = args.order or f"demo-{uuid.uuid4().hex[:8]}"
    topic = args.topic
    if args.body == "-":
        body = sys.stdin.buffer.read()
    elif args.body and Path(args.body).is_file():
        body = Path(args.body).read_bytes()
    else:
        if not samples:
            if args.body:
                print(f"no such file: {args.body}", file=sys.stderr)
            else:
                print(f"no built-in samples for {args.provider}: give a FILE or -",
                      file=sys.stderr)  # fmt: skip
            return 2
        name = args.body or next(iter(samples))
        if name not in samples:
            # Sample names have dots (order.created): a folder or .json means a file.
            if os.sep in name or name.lower().endswith(".json"):
                print(f"no such file: {name}", file=sys.stderr)
            else:
                print(f"no sample {name!r} for {args.provider} and no such file; "
                      "try --list", file=sys.stderr)  # fmt: skip
            return 2
        body = sample_body(args.provider, name, order_id)
        topic = topic or name
        print(f"order {order_id}: sending sample {name}", file=sys.stderr)

    setting, secrets, adapter = configured[args.provider]
    if not secrets:
        print(f"no secret for {args.provider}: set {setting}", file=sys.stderr)
        return 2
    # A provider that signs with a private key signs only with the local one.
    local = local_secrets(settings.data_dir) if settings.embedded else {}
    try:
        key = adapter.signing_key(secrets[0], local)
        headers = adapter.sign(key, body, now=int(time.time()), topic=topic or "orders/create")
    except CannotSign as exc:
        print(f"cannot sign for {args.provider}: {exc}", file=sys.stderr)
        return 2
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
