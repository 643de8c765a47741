"""The self-test: one entry per subsystem, each ``ok``, ``safe_mode``,
``degraded`` or ``error`` with a short reason. Reasons name settings and
counts, never a secret's value.

``datastore``, ``ledger``, ``timers`` and ``jobs`` are critical: an error in any of them
makes the whole answer an error (HTTP 503, exit status 1). The others report
what an operator should fix without the service being down: a provider without
a secret refuses that provider's deliveries only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from api.providers.base import Adapter
from events.connector import Database
from events.errors import ChainBroken, HookledgerError
from events.quarantine import quarantine_counts
from events.queries import load
from events.store import verify_chains
from hookledger.background_process import read_status
from hookledger.migrations import discover
from hookledger.secrets import SecretStore
from hookledger.settings import Settings
from hookledger.supervisor import JobState, Supervisor
from scheduler.actions.config import ActionSettings
from scheduler.actions.model import EMAIL_REMINDER, REFUND, ActionRequest
from scheduler.actions.payments import AuthorizeNet
from scheduler.actions.queue import open_circuits
from scheduler.actions.sendgrid import SendGrid
from scheduler.cloudtasks import TaskQueue
from scheduler.timers import QUERIES as TIMER_QUERIES

log = logging.getLogger(__name__)

QUERIES = load(Path(__file__).with_name("selftest.sql"))
CRITICAL = frozenset({"datastore", "ledger", "timers", "jobs"})
SPOT_CHECK_STREAMS = 3
# Timers overdue longer than this (beyond the reconciler's lag) mean nothing fires them.
TIMERS_LATE_SECONDS = 300.0


class Check(msgspec.Struct, frozen=True):
    status: str
    reason: str


OK = "ok"
SAFE_MODE = "safe_mode"
DEGRADED = "degraded"
ERROR = "error"


class SelfTest:
    """Runs every check against one process's configuration."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        providers: Mapping[str, Adapter],
        actions: ActionSettings,
        secrets: SecretStore,
        queue: TaskQueue | None = None,
        supervisor: Supervisor | None = None,
        background: Path | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._providers = providers
        self._actions = actions
        self._secrets = secrets
        self._queue = queue
        self._supervisor = supervisor
        # Where serve keeps the state of its background process, if it runs one.
        self._background = background

    async def run(self) -> dict[str, Any]:
        """``{"status": ..., "checks": {name: {"status", "reason"}}}``."""
        checks: dict[str, Check] = {
            "datastore": await self._guard(self.datastore),
            "ledger": await self._guard(self.ledger),
        }
        for name, adapter in sorted(self._providers.items()):
            checks[f"inbound.{name}"] = inbound(adapter)
        circuits = await self._open_circuits()
        checks["outbound.sendgrid"] = _circuit(outbound(self._actions, EMAIL_REMINDER),
                                               "sendgrid", circuits)  # fmt: skip
        checks["outbound.payments"] = _circuit(outbound(self._actions, REFUND),
                                               "authorizenet", circuits)  # fmt: skip
        checks["timers"] = await self._guard(self.timers)
        checks["exporter"] = await self._guard(self.exporter)
        checks["quarantine"] = await self._guard(self.quarantine)
        checks["proofs"] = await self._guard(self.proofs)
        checks["jobs"] = self.jobs()
        checks["secrets"] = self.secrets()
        return {
            "status": overall(checks),
            "checks": {name: msgspec.structs.asdict(c) for name, c in checks.items()},
        }

    async def _open_circuits(self) -> dict[str, str]:
        """The breakers the sending processes hold open (none if the database
        cannot tell: the datastore check says why)."""
        try:
            return await open_circuits(self._db)
        except HookledgerError:
            return {}

    async def _guard(self, check: Any) -> Check:
        try:
            result: Check = await check()
        except HookledgerError as exc:
            return Check(ERROR, exc.detail or exc.code)
        return result

    async def datastore(self) -> Check:
        known = {m.version: m.checksum for m in discover()}
        applied = {r[0]: r[1] for r in await self._db.fetch_all(QUERIES["applied_migrations"])}
        missing = sorted(set(known) - set(applied))
        changed = sorted(v for v in set(known) & set(applied) if known[v] != applied[v])
        if missing or changed:
            return Check(ERROR, f"migrations not applied: {missing}, edited since: {changed}")
        return Check(OK, f"database answers; {len(applied)} migrations applied")

    async def ledger(self) -> Check:
        rows = await self._db.fetch_all(QUERIES["recent_streams"], (SPOT_CHECK_STREAMS,))
        events = 0
        for (stream,) in rows:
            try:
                events += (await verify_chains(self._db, stream)).events
            except ChainBroken as exc:
                return Check(ERROR, f"hash chain broken: {exc.detail}")
        return Check(OK, f"hash chains of the {len(rows)} latest streams verify ({events} events)")

    async def timers(self) -> Check:
        lag = 0.0
        where = "postgres"
        if self._queue is not None:
            lag = self._settings.tasks_reconcile_lag.total_seconds()
            state = await self._queue.check()
            where = f"cloudtasks queue {state}"
            if state != "RUNNING":
                return Check(DEGRADED, f"{where}: tasks wait; the reconciler fires after {lag:g} s")
        async with self._db.transaction() as session:
            # The worker's own claim, taking nothing: it plans and runs.
            await session.fetch_all(TIMER_QUERIES["claim_timers"], (lag, 0))
            row = await session.fetch_one(QUERIES["overdue_timers"], (lag,))
        count, oldest = (int(row[0]), float(row[1])) if row else (0, 0.0)
        if count and oldest - lag > TIMERS_LATE_SECONDS:
            return Check(DEGRADED, f"{where}; {count} timers overdue, the oldest by {oldest:.0f} s")
        return Check(OK, f"{where}; {count} timers overdue")

    async def exporter(self) -> Check:
        row = await self._db.fetch_one(QUERIES["exporter_lag"])
        if row is None:
            return Check(OK, "not configured (no exporter.bigquery checkpoint)")
        return Check(OK, f"at position {row[0]}, {row[1]} events behind the ledger")

    async def proofs(self) -> Check:
        row = await self._db.fetch_one(QUERIES["proofs_state"])
        tree, signed, age = (int(row[0]), row[1], row[2]) if row else (0, None, None)
        if not self._settings.checkpoint_key and not self._settings.embedded:
            return Check(DEGRADED, f"tree of {tree} events; checkpoints are not signed: "
                                   "set HOOKLEDGER_CHECKPOINT_KEY")  # fmt: skip
        if signed is None:
            return Check(OK, f"tree of {tree} events; no checkpoint signed yet")
        late = 2 * self._settings.checkpoint_interval.total_seconds() + 60
        if tree > signed and age is not None and age > late:
            return Check(DEGRADED, f"tree of {tree} events; the newest checkpoint signs "
                                   f"{signed}, {age:.0f} s ago: is a worker running?")  # fmt: skip
        return Check(OK, f"tree of {tree} events; the newest checkpoint signs {signed}")

    async def quarantine(self) -> Check:
        counts = {name: n for name, n in (await quarantine_counts(self._db)).items() if n}
        if counts:
            named = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
            return Check(DEGRADED, f"events set aside ({named}); see `hookledger quarantine`")
        return Check(OK, "no event set aside")

    def jobs(self) -> Check:
        if self._background is not None:
            return background_check(read_status(self._background), time.time())
        if self._supervisor is None:
            return Check(OK, "no background work in this process")
        down = self._supervisor.down()
        if down:
            named = "; ".join(f"{name} ({error})" for name, error in sorted(down.items()))
            return Check(ERROR, f"down, restarting with backoff: {named}")
        waiting = self._supervisor.restarting()
        if waiting:
            named = "; ".join(f"{name} ({error})" for name, error in sorted(waiting.items()))
            return Check(DEGRADED, f"restarting after a failure: {named}")
        restarts = sum(s.restarts for s in self._supervisor.jobs.values())
        return Check(OK, f"{len(self._supervisor.jobs)} jobs running; {restarts} restarts so far")

    def secrets(self) -> Check:
        names = self._secrets.settings()
        if self._secrets.failures:
            failed = ", ".join(sorted(self._secrets.failures))
            return Check(DEGRADED, f"last refresh failed for {failed}; the values held stay")
        return Check(OK, f"{len(names)} secret settings held")


def inbound(adapter: Adapter) -> Check:
    if not adapter.secrets:
        return Check(ERROR, f"no secret: every delivery is refused (set {adapter.secret_setting})")
    return Check(OK, f"{len(adapter.secrets)} active secret value(s), {adapter.scheme}")


# A made-up action: the request is built, never sent.
_SAMPLE_PARAMS = {
    "to": "selftest@example.com",
    "order_id": "selftest",
    "due_at": "2000-01-01T00:00:00+00:00",
    "amount": "1.00",
    "currency": "USD",
    "transaction_id": "0",
    "card_last4": "1111",
}


def outbound(actions: ActionSettings, kind: str) -> Check:
    sample = ActionRequest.for_trigger(kind, "selftest", "selftest", _SAMPLE_PARAMS)
    sender = SendGrid(actions) if kind == EMAIL_REMINDER else AuthorizeNet(actions)
    try:
        prepared = sender.prepare(sample)
        msgspec.json.encode(prepared.request.redacted())
    except (ValueError, TypeError) as exc:
        return Check(ERROR, f"the request does not build: {type(exc).__name__}")
    if actions.safe_mode:
        return Check(SAFE_MODE, "safe mode: requests are recorded, not sent")
    if prepared.missing:
        return Check(ERROR, prepared.missing)
    return Check(OK, "credentials present; the request builds")


def _circuit(check: Check, provider: str, circuits: Mapping[str, str]) -> Check:
    """An open circuit breaker degrades an outbound check that is fine otherwise."""
    state = circuits.get(provider)
    if state is None or check.status != OK:
        return check
    return Check(DEGRADED, f"circuit {state.replace('_', '-')}: {provider}'s "
                           "actions wait for it to answer again")  # fmt: skip


def background_check(status: JobState | None, now: float) -> Check:
    """The jobs check of an intake process whose background work runs in a
    process of its own, started by serve."""
    if status is None:
        return Check(DEGRADED, "the background process has not started yet")
    if status.down(now):
        deaths = f"{status.deaths_in_row} deaths in a row; {status.last_error}"
        return Check(ERROR, f"background process down, restarting with backoff ({deaths})")
    if not status.running:
        return Check(DEGRADED, f"background process restarting: {status.last_error}")
    return Check(OK, f"background process running (pid {status.pid}); "
                     f"{status.restarts} restarts so far")  # fmt: skip


def overall(checks: Mapping[str, Check]) -> str:
    """``error`` if a critical check failed; else ``degraded`` if any check is not
    fine; else ``ok``."""
    if any(c.status == ERROR for name, c in checks.items() if name in CRITICAL):
        return ERROR
    if any(c.status in (ERROR, DEGRADED) for c in checks.values()):
        return DEGRADED
    return OK


# How often a server process runs its self-test for /metrics.
REFRESH_SECONDS = 60.0


async def keep_fresh(
    run: Callable[[], Awaitable[dict[str, Any]]],
    store: Callable[[dict[str, Any]], None],
    interval: float = REFRESH_SECONDS,
) -> None:
    """Run the self-test now and every ``interval`` seconds, handing each report
    to ``store`` (the metrics), until cancelled. A failing run is logged and the
    previous report kept; it never stops the loop."""
    while True:
        try:
            store(await run())
        except Exception:
            log.exception("self-test for metrics failed")
        await asyncio.sleep(interval)
