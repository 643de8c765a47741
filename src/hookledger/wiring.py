"""Wiring: settings in, a running application out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Protocol

import msgspec
from litestar import Litestar

from api.app import create_app
from api.console.iap import IapVerifier
from api.metrics import Metrics
from api.providers import BUILT_IN
from api.providers.base import Adapter
from api.rate_limit import SignatureLimiter
from api.services import Services
from api.task_auth import TaskAuth
from events.appender import Appender, BatchObserver
from events.connector import Database
from events.errors import HookledgerError
from events.tree import TREE_CONSUMER
from hookledger import __version__, http_protocol
from hookledger.background import Background, task_queue
from hookledger.background_process import STATUS_ENV, jobs_down
from hookledger.checkpointer import Checkpointer
from hookledger.console_reads import ConsoleReads
from hookledger.erasures import erase_request, erasure_preview
from hookledger.logs import configure
from hookledger.operations import operation_gauges
from hookledger.personal_data import personal_cutter
from hookledger.runtime import Runtime
from hookledger.secrets import SecretStore, live_provider_secrets
from hookledger.selftest import SelfTest, keep_fresh
from hookledger.settings import Settings, SettingsError, from_env
from hookledger.sources import load_sources
from projections.projectors import PROJECTIONS
from projections.status import order_status
from scheduler.actions.config import ActionSettings
from scheduler.cloudtasks import record_dead_task
from scheduler.policy import CountdownPolicy
from scheduler.timers import fire_order

log = logging.getLogger("hookledger")

SENDGRID_API_KEY = "HOOKLEDGER_SENDGRID_API_KEY"
AUTHORIZENET_TRANSACTION_KEY = "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY"
# How often an intake process adds its tallies (deliveries, refused signatures)
# to the database.
TALLIES_EVERY_SECONDS = 5.0


def build_services(
    settings: Settings,
    database_url: str,
    *,
    multiprocess_metrics: bool = False,
    background_status: Path | None = None,
) -> Services:
    """Everything the app needs, not yet started. ``background_status``: where
    serve keeps the state of the background process it runs beside this one."""
    metrics = Metrics(multiprocess=multiprocess_metrics)
    runtime = counted_runtime(settings, database_url, metrics, count_batches=True)
    db, secrets, action_config = runtime.db, runtime.secrets, runtime.actions
    providers = build_providers(settings, secrets)
    metrics.register_providers(providers)
    metrics.register_consumers(
        [*(p.consumer_name for p in PROJECTIONS.values()), CountdownPolicy.name, TREE_CONSUMER]
    )
    tokens = secrets.live(settings.api_token, "HOOKLEDGER_API_TOKEN")
    console = ConsoleReads(db)
    services = Services(
        db=db,
        appender=runtime.appender,
        providers=providers,
        metrics=metrics,
        version=__version__,
        safe_mode=settings.safe_mode,
        max_body_bytes=settings.max_body_bytes,
        read_tokens=tokens,
        order_status=partial(order_status, db),
        signature_limiter=SignatureLimiter(settings.signature_failures_per_minute),
        metrics_tokens=secrets.live(settings.metrics_token, "HOOKLEDGER_METRICS_TOKEN"),
        operator_tokens=secrets.live(settings.operator_tokens, "HOOKLEDGER_OPERATOR_TOKENS"),
        auditor_tokens=secrets.live(settings.auditor_tokens, "HOOKLEDGER_AUDITOR_TOKENS"),
        console_key=console.session_key,
        console_overview=console.overview,
        console_orders=console.orders,
        order_history=console.history,
        dead_letters=console.dead_letters,
        retry_dead_letter=console.retry,
        retry_all=console.retry_all,
        console_job=console.job,
        replays=console.replays,
        operator_actions=console.operator_actions,
        start_replay=console.start_replay,
        redeem_link=console.redeem_link,
        trouble=console.trouble,
        iap=_iap(settings),
        erase=partial(erase_request, db),
        erasure_preview=partial(erasure_preview, db),
        operation_gauges=partial(operation_gauges, db),
        trusted_proxies=settings.trusted_proxies,
        sign_checkpoint=runtime.checkpointer.checkpoint,
        verifier_key=runtime.checkpointer.verifier_key,
    )
    queue = None
    if settings.timer_backend == "cloudtasks":
        serve_cloud_tasks(services, settings, secrets)
        queue = task_queue(settings)
        runtime.close_on_stop(queue.close)
    supervisor = None
    if runtime.background is not None:
        supervisor = runtime.background.supervisor
        services.jobs_down = supervisor.down
    elif background_status is not None:
        services.jobs_down = partial(jobs_down, background_status)
    services.selftest = SelfTest(
        settings, db, providers, action_config, secrets, queue, supervisor, background_status
    ).run
    # Litestar starts and stops the app by callbacks: the runtime is entered in one
    # and left in the other.
    running = AsyncExitStack()

    async def start() -> None:
        await running.enter_async_context(runtime.running())
        # The self-test's states for /metrics, refreshed here, never by a scrape.
        assert services.selftest is not None
        refresh = asyncio.create_task(
            keep_fresh(services.selftest, partial(setattr, metrics, "selftest_report")),
            name="selftest-metrics",
        )
        running.push_async_callback(_cancelled, refresh)
        tally = asyncio.create_task(_keep_adding_tallies(metrics, console), name="console-tallies")
        running.push_async_callback(_cancelled, tally)
        # Everything made so far lives as long as the process: keep the garbage
        # collector from scanning it again and again on the hot path (its full
        # collections were the latency tail: p99 38 ms before, 22 ms after).
        gc.freeze()
        for name, adapter in providers.items():
            if not adapter.secrets:
                log.warning(
                    "provider has no secret: every delivery will be refused",
                    extra={"provider": name, "setting": adapter.secret_setting},
                )
        if services.task_auth is not None and not services.task_auth.configured:
            log.warning(
                "no task caller can authenticate: set HOOKLEDGER_TASKS_SERVICE_ACCOUNT "
                "or HOOKLEDGER_TASKS_SECRET"
            )
        await runtime.checkpointer.signer()  # a bad key stops the start, naming its setting
        if not tokens.values:
            log.warning("audit reads are open: set HOOKLEDGER_API_TOKEN to require a token")
        if not settings.safe_mode:
            log.warning("safe mode is off: emails and refunds are sent for real")
            for setting in _missing_action_credentials(action_config):
                log.warning("actions needing it will be dead-lettered", extra={"unset": setting})

    async def stop() -> None:
        await running.aclose()

    services.on_startup.append(start)
    services.on_shutdown.append(stop)
    return services


async def _keep_adding_tallies(metrics: Metrics, console: ConsoleReads) -> None:
    """Every few seconds, this process's deliveries and refused signatures by
    minute into the database, for the console's overview and trouble page (a
    lost write loses only counts, which /metrics still has)."""
    while True:
        await asyncio.sleep(TALLIES_EVERY_SECONDS)
        rejections, deliveries = metrics.take_by_minute()
        try:
            await console.add_counts(rejections, deliveries)
        except HookledgerError as exc:
            log.warning("delivery counts not recorded for the console",
                        extra={"error": exc.detail, "minutes": len(deliveries)})  # fmt: skip


def _iap(settings: Settings) -> IapVerifier | None:
    """The IAP header's verifier, when an audience is set."""
    if not settings.iap_audience:
        return None
    return IapVerifier(settings.iap_audience, settings.iap_keys_url,
                       set(settings.operator_emails.replace(",", " ").split()),
                       set(settings.auditor_emails.replace(",", " ").split()))  # fmt: skip


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_runtime(
    settings: Settings,
    database_url: str,
    *,
    background: bool | None = None,
    observe_batch: BatchObserver | None = None,
    observe_action: Callable[[str, str], None] | None = None,
    observe_call: Callable[[str, str, float], None] | None = None,
    on_restart: Callable[[str], None] | None = None,
) -> Runtime:
    """A process's database, appender, secrets, outbound actions and background
    work (``background``: whether to run it; default: the setting), not started."""
    db = Database(database_url, max_size=settings.pool_size)
    appender = Appender(
        db,
        max_batch=settings.max_batch,
        group_commit=settings.group_commit,
        observe=observe_batch,
        max_queued=settings.max_queued_events,
        max_wait=settings.max_queue_wait.total_seconds(),
        cutter=personal_cutter(settings),
    )
    secrets = SecretStore.from_settings(settings)
    actions = action_settings(settings, secrets)
    checkpointer = Checkpointer(db, settings)
    work = None
    if settings.background if background is None else background:
        work = build_background(
            settings,
            db,
            appender,
            secrets,
            actions,
            checkpointer,
            observe_action=observe_action,
            observe_call=observe_call,
            on_restart=on_restart,
        )
    return Runtime(db, appender, secrets, actions, work, checkpointer)


def build_worker(settings: Settings, database_url: str, *, multiprocess_metrics: bool) -> Runtime:
    """`hookledger worker`'s runtime. Started by serve (``multiprocess_metrics``),
    it counts its actions, outbound calls and restarts where the intake
    processes' /metrics adds them up."""
    if not multiprocess_metrics:
        return build_runtime(settings, database_url, background=True)
    return counted_runtime(settings, database_url, Metrics(multiprocess=True), background=True)


def counted_runtime(
    settings: Settings,
    database_url: str,
    metrics: Metrics,
    *,
    background: bool | None = None,
    count_batches: bool = False,
) -> Runtime:
    """``build_runtime`` with its actions, outbound calls, job restarts (and, with
    ``count_batches``, its append batches) counted in ``metrics``, safe mode
    shown there and every background job's series started at zero."""
    runtime = build_runtime(
        settings,
        database_url,
        background=background,
        observe_batch=metrics.observe_batch if count_batches else None,
        observe_action=metrics.count_action,
        observe_call=metrics.observe_call,
        on_restart=metrics.count_restart,
    )
    metrics.safe_mode.set(1 if settings.safe_mode else 0)
    if runtime.background is not None:
        metrics.register_jobs(runtime.background.jobs())
    return runtime


def build_providers(settings: Settings, secrets: SecretStore) -> dict[str, Adapter]:
    """Every inbound provider, built-in and declared, reading live secrets."""
    providers: dict[str, Adapter] = {}
    for name, secret in live_provider_secrets(settings, secrets).items():
        try:
            providers[name] = BUILT_IN[name](secret, secret.setting)
        except ValueError as exc:  # a secret or key that cannot be used
            raise SettingsError(f"{secret.setting}: {exc}") from None
    providers.update(load_sources(settings.providers_file, secrets))
    return providers


def serve_cloud_tasks(services: Services, settings: Settings, secrets: SecretStore) -> None:
    """Open ``POST /internal/tasks/countdown`` to Cloud Tasks."""
    task_secret = secrets.live(settings.tasks_secret, "HOOKLEDGER_TASKS_SECRET")
    services.task_auth = TaskAuth(
        secrets=lambda: task_secret.values,
        service_account=settings.tasks_service_account,
        audience=settings.tasks_audience or settings.tasks_target_url.rstrip("/"),
        certs_url=settings.tasks_oidc_certs_url,
    )
    services.fire_task = partial(fire_order, services.db, services.appender)
    services.dead_task = partial(record_dead_task, services.db)
    services.task_max_retries = settings.tasks_max_retries


def action_settings(settings: Settings, secrets: SecretStore | None = None) -> ActionSettings:
    """What the outbound actions need, their secrets resolved (plain, ``file:``
    or Secret Manager) and held by ``secrets`` for its refreshes."""
    store = secrets or SecretStore.from_settings(settings)

    def secret(value: str, setting: str) -> str:
        return store.live(value, setting).first()

    return ActionSettings(
        safe_mode=settings.safe_mode,
        sendgrid_api_key=secret(settings.sendgrid_api_key, SENDGRID_API_KEY),
        sendgrid_base_url=settings.sendgrid_base_url,
        email_from=settings.email_from,
        verification_url=settings.verification_url,
        payments_base_url=settings.payments_base_url,
        authorizenet_login_id=settings.authorizenet_login_id,
        authorizenet_transaction_key=secret(
            settings.authorizenet_transaction_key, AUTHORIZENET_TRANSACTION_KEY
        ),
        max_attempts=settings.action_max_attempts,
        backoff_seconds=settings.action_backoff_seconds,
        backoff_max_seconds=settings.action_backoff_max_seconds,
        timeout_seconds=settings.action_timeout_seconds,
        breaker_failures=settings.breaker_failures,
        breaker_cool_down_seconds=settings.breaker_cool_down.total_seconds(),
    )


def build_background(
    settings: Settings,
    db: Database,
    appender: Appender,
    secrets: SecretStore,
    action_config: ActionSettings,
    checkpointer: Checkpointer,
    *,
    observe_action: Callable[[str, str], None] | None = None,
    observe_call: Callable[[str, str, float], None] | None = None,
    on_restart: Callable[[str], None] | None = None,
) -> Background:
    """The background work of `serve` and `worker`, its action worker following
    rotated outbound credentials."""
    background = Background(
        settings,
        db,
        appender,
        action_config,
        checkpointer,
        observe_action=observe_action,
        observe_call=observe_call,
        secrets=secrets,
        on_restart=on_restart,
    )
    follow_action_secrets(secrets, action_config, background.actions)
    return background


class Reconfigurable(Protocol):
    def reconfigure(self, settings: ActionSettings) -> None: ...


def follow_action_secrets(
    secrets: SecretStore, config: ActionSettings, worker: Reconfigurable
) -> None:
    """After a refresh that changed a secret, hand the action worker the
    credentials as they are now."""

    def changed() -> None:
        worker.reconfigure(
            msgspec.structs.replace(
                config,
                sendgrid_api_key=secrets.get(SENDGRID_API_KEY).first(),
                authorizenet_transaction_key=secrets.get(AUTHORIZENET_TRANSACTION_KEY).first(),
            )
        )

    secrets.on_change(changed)


def _missing_action_credentials(config: ActionSettings) -> list[str]:
    credentials = {
        "HOOKLEDGER_SENDGRID_API_KEY": config.sendgrid_api_key,
        "HOOKLEDGER_AUTHORIZENET_LOGIN_ID": config.authorizenet_login_id,
        "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY": config.authorizenet_transaction_key,
    }
    return [setting for setting, value in credentials.items() if not value]


def app_from_env() -> Litestar:
    """The uvicorn factory: settings from the environment, read here and only here.

    ``hookledger serve`` has already put the embedded database's URL (and the
    local secrets) into the environment when it runs one.
    """
    settings = from_env(os.environ)
    configure(settings.log_level, settings.gcp_project)
    # This process's connections (the protocol class uvicorn was given) read it.
    http_protocol.REQUEST_TIMEOUT_SECONDS = settings.request_timeout.total_seconds()
    http_protocol.CONNECTION_CAP = http_protocol.connection_cap()
    if not settings.database_url:
        raise SettingsError("HOOKLEDGER_DATABASE_URL is not set (use `hookledger serve`)")
    # Set by `serve --workers N` before the workers start (prometheus_client
    # reads it when first imported); not a hookledger setting.
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    status = os.environ.get(STATUS_ENV)
    return create_app(
        build_services(
            settings,
            settings.database_url,
            multiprocess_metrics=multiprocess,
            background_status=Path(status) if status else None,
        )
    )
