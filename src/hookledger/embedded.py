"""The embedded Postgres (pgserver) used when no database URL is configured."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from events.retry import Backoff
from hookledger.settings import SettingsError

log = logging.getLogger(__name__)

# pgserver counts the processes that use a server in this file and stops the
# server when the last one leaves; a holder that was killed never leaves.
HOLDERS_FILE = ".handle_pids.json"
# The longest wait between two attempts to start a stopped embedded Postgres.
RESTART_CAP_SECONDS = 30.0

# What a command that needs a database says on an install without pgserver.
MISSING = (
    "no database: HOOKLEDGER_DATABASE_URL is not set and the embedded Postgres is not "
    "installed; install hookledger[embedded] or set HOOKLEDGER_DATABASE_URL"
)


class EmbeddedPostgres:
    """A Postgres server of our own under ``data_dir/pg``, shared by the
    processes of one installation and stopped by the one that started it."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._server: Any = None
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()

    def exists(self) -> bool:
        """Whether a database was made here already (by `serve` or `migrate`)."""
        return (self.pgdata / "PG_VERSION").is_file()

    def start(self) -> str:
        """Start (or join) the server; return its connection URL.

        Raises SettingsError when pgserver is not installed (a deployment's
        install, which brings its own database)."""
        pgserver = installed()

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_holders(self.pgdata / HOLDERS_FILE)
        get_server = pgserver.get_server
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        url: str = self._server.get_uri()
        log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})
        return url

    def watch(self, interval: float = 1.0) -> None:
        """Start it again, with backoff, whenever it stops under us (killed, or
        stopped by hand), until ``stop``; each restart is logged."""
        self._stopping.clear()
        self._watchdog = threading.Thread(
            target=self._keep_running, args=(interval,), name="embedded-postgres", daemon=True
        )
        self._watchdog.start()

    def _keep_running(self, interval: float) -> None:
        from pgserver.utils import PostmasterInfo  # the package start() imported

        backoff = Backoff("embedded postgres", interval, RESTART_CAP_SECONDS)
        while not self._stopping.wait(interval):
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                backoff.reset()
                continue
            delay = backoff.next()
            log.error("embedded postgres stopped: restarting it",
                      extra={"pgdata": str(self.pgdata), "in_seconds": round(delay, 2),
                             "attempt": backoff.failures})  # fmt: skip
            if self._stopping.wait(delay):
                return
            try:
                # pgserver starts a server only under its own lock (its contract).
                with self._server._lock:
                    self._server.ensure_postgres_running()
            except Exception:
                log.exception(
                    "embedded postgres did not start again", extra={"pgdata": str(self.pgdata)}
                )
                continue
            log.warning("embedded postgres restarted", extra={"pgdata": str(self.pgdata)})

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=30)
            self._watchdog = None
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def installed() -> Any:
    """The pgserver module; SettingsError saying what to install where it is not
    (a deployment's install, which brings its own database)."""
    try:
        return _import_pgserver()
    except ModuleNotFoundError as exc:
        if exc.name != "pgserver":
            raise  # pgserver is there but broken: its own error says more
        raise SettingsError(MISSING) from None


def runtime_dir() -> Path:
    """The embedded Postgres's runtime folder (its lock file, and its socket when
    the data folder's path is too long for one): the user's XDG_RUNTIME_DIR, or
    one of hookledger's own in the temporary folder where that is unset (root
    shells, containers, cron)."""
    given = os.environ.get("XDG_RUNTIME_DIR")
    if given:
        return Path(given)
    own = Path(tempfile.gettempdir()) / f"hookledger-runtime-{os.getuid()}"
    own.mkdir(mode=0o700, exist_ok=True)
    return own


def _import_pgserver() -> Any:
    """pgserver, imported with a runtime folder set: it asks platformdirs for
    one at import, which warns (RuntimeDirWarning) where none is set."""
    before = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir())
    try:
        import pgserver  # a heavy import, only needed on the embedded path
    finally:
        if before is None:
            del os.environ["XDG_RUNTIME_DIR"]
    return pgserver


def _forget_dead_holders(path: Path) -> None:
    """Drop processes that no longer exist from pgserver's list of holders."""
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
