"""What the routes need, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.console.iap import IapVerifier
from api.metrics import Gauge, Metrics
from api.providers.base import Adapter, FixedSecret, SecretValues
from api.rate_limit import SignatureLimiter
from api.task_auth import TaskAuth
from events.appender import Appender
from events.checkpoint_log import SignedCheckpoint
from events.connector import Database


@dataclass
class Services:
    db: Database
    appender: Appender
    providers: dict[str, Adapter]
    metrics: Metrics
    version: str
    safe_mode: bool
    max_body_bytes: int
    read_tokens: SecretValues = field(default_factory=lambda: FixedSecret(()))
    # Gauges read from the database at each scrape (timers, dead letters).
    operation_gauges: Callable[[], Awaitable[list[Gauge]]] | None = None
    # Bearer token(s) for /metrics; empty: open, as Prometheus scrapes by default.
    metrics_tokens: SecretValues = field(default_factory=lambda: FixedSecret(()))
    # Refused signatures per source address, and how many proxies in front of
    # the service append to X-Forwarded-For (0: the peer is the source).
    signature_limiter: SignatureLimiter = field(default_factory=lambda: SignatureLimiter(60))
    trusted_proxies: int = 0
    # An order's projected state (None when unknown), from the composition root.
    order_status: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None
    # The Cloud Tasks endpoint (None unless the cloudtasks timer backend is on):
    # who may call it, what a task does (order, timer, due time -> outcome), where
    # a task that gave up is recorded (task name, order, retry count, error).
    task_auth: TaskAuth | None = None
    fire_task: Callable[[str, str, datetime], Awaitable[str]] | None = None
    dead_task: Callable[[str, str | None, int, str], Awaitable[None]] | None = None
    task_max_retries: int = 20
    # The background jobs of this process that are down, each with its last error.
    jobs_down: Callable[[], dict[str, str]] | None = None
    # The self-test's checks, from the composition root.
    selftest: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # Signed checkpoints: sign the tree now (None without a key), and the key as
    # a C2SP verifier key (None without a key).
    sign_checkpoint: Callable[[], Awaitable[SignedCheckpoint | None]] | None = None
    verifier_key: Callable[[], Awaitable[str | None]] | None = None
    # Erasure on request (POST /api/v1/erasures): who may ask (operator tokens;
    # none: refused), and what erases (order id, e-mail, reason, by, via).
    operator_tokens: SecretValues = field(default_factory=lambda: FixedSecret(()))
    erase: Callable[[str | None, str | None, str, str, str], Awaitable[dict[str, Any]]] | None = (
        None
    )
    # What erasing an order's customer would delete (the console asks first).
    erasure_preview: Callable[[str], Awaitable[dict[str, int]]] | None = None
    # The console: who may read (auditors) beside the operators, the key its
    # session cookies are signed with, and its reads (overview counts; orders
    # by id, e-mail, status or countdown state after a keyset cursor; an order's event views and
    # its chain's state).
    auditor_tokens: SecretValues = field(default_factory=lambda: FixedSecret(()))
    console_key: Callable[[], Awaitable[bytes]] | None = None
    console_overview: Callable[[], Awaitable[dict[str, Any]]] | None = None
    console_orders: (
        Callable[[str, str, str, str], Awaitable[tuple[list[dict[str, Any]], bool]]] | None
    ) = None
    order_history: Callable[[str], Awaitable[tuple[list[dict[str, Any]], str]]] | None = None
    # Dead letters, and an operator's retry of one (key, who, from which
    # address): queued again and recorded in the ledger; False if not dead.
    dead_letters: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    # Refused signatures by provider, reason and hour; countdowns blocked.
    trouble: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # Behind Identity-Aware Proxy: who its signed header says the viewer is.
    iap: IapVerifier | None = None
    # A one-time sign-in link's token redeemed (True once, if valid).
    redeem_link: Callable[[str], Awaitable[bool]] | None = None
    retry_dead_letter: Callable[[str, str, str], Awaitable[bool]] | None = None
    # Dead letters (the keys of those of a kind, or all) retried in the
    # background (keys, kind, who, from where) -> the job's id; a job's progress.
    retry_all: Callable[[list[str], str, str, str], Awaitable[int]] | None = None
    console_job: Callable[[int], Awaitable[dict[str, Any] | None]] | None = None
    # The consumers' lags and the latest replays; a replay started (who, from
    # where) -> its job's id.
    replays: Callable[[], Awaitable[dict[str, Any]]] | None = None
    start_replay: Callable[[str, str], Awaitable[int]] | None = None
    # What operators did, newest first, a page before a position (or the newest).
    operator_actions: Callable[[int | None], Awaitable[list[dict[str, Any]]]] | None = None
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
