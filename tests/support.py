"""Helpers shared by the tests: databases, a real server process, signing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import LiteralString
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from api.providers import BUILT_IN
from api.providers.base import Adapter
from api.providers.standard import StandardSource, standard_webhooks_headers
from api.sendgrid_signature import new_key_pair
from api.signatures import (
    hmac_sha256_hex,
    standard_webhooks_sign,
)
from hookledger.settings import variable

VERIFF_SECRET = "test-veriff-secret"
POST_PURCHASE_SECRET = "whsec_dGVzdC1wb3N0LXB1cmNoYXNlLXNlY3JldA=="
SHOPIFY_SECRET = "shpss_test_shopify_secret"
STRIPE_SECRET = "whsec_test_stripe_secret"
AUTHORIZENET_SECRET = "0123456789ABCDEF" * 8
# SendGrid keeps its private key; the tests play SendGrid with a pair of their own.
SENDGRID_PRIVATE_KEY, SENDGRID_PUBLIC_KEY = new_key_pair()
# A source declared in the providers file (Standard Webhooks, svix-style headers).
SOURCE = "returns"
SOURCE_SECRET = "whsec_dGVzdC1yZXR1cm5zLXNvdXJjZS1zZWNyZXQ="
PROVIDERS = (*BUILT_IN, SOURCE)
# What verifies each built-in provider's test deliveries, and what signs them
# (SendGrid signs with the private half of its key pair).
VERIFY_SECRETS = {
    "veriff": VERIFF_SECRET,
    "post-purchase": POST_PURCHASE_SECRET,
    "shopify": SHOPIFY_SECRET,
    "stripe": STRIPE_SECRET,
    "authorizenet": AUTHORIZENET_SECRET,
    "sendgrid": SENDGRID_PUBLIC_KEY,
}
SIGNING_KEYS = {**VERIFY_SECRETS, "sendgrid": SENDGRID_PRIVATE_KEY}

ROOT = Path(__file__).resolve().parents[1]


def providers_file() -> Path:
    """The providers file every test server reads: one source, ``returns``."""
    path = Path(tempfile.gettempdir()) / f"hookledger-test-providers-{os.getpid()}.toml"
    path.write_text(
        f"[sources.{SOURCE}]\n"
        f'secret = "{SOURCE_SECRET}"\n'
        'order_path = "data.order_id"\n'
        'type_path = "type"\n'
    )
    return path


def signed(
    provider: str, body: bytes, *, now: int | None = None, topic: str = "orders/create"
) -> dict[str, str]:
    """A delivery's headers, signed the provider's way with the test secrets."""
    now = int(time.time()) if now is None else now
    if provider in BUILT_IN:
        return BUILT_IN[provider].sign(SIGNING_KEYS[provider], body, now=now, topic=topic)
    if provider != SOURCE:
        raise ValueError(f"no test signer for {provider!r}")
    # The declared source is signed with Svix's header names.
    return standard_webhooks_headers(SOURCE_SECRET, body, now, prefix="svix")


def provider_adapters() -> dict[str, Adapter]:
    """Every provider's adapter (and the declared source's) with the test secrets."""
    adapters = {
        name: adapter([VERIFY_SECRETS[name]], variable(adapter.secrets_field))
        for name, adapter in BUILT_IN.items()
    }
    adapters[SOURCE] = StandardSource(
        SOURCE,
        [SOURCE_SECRET],
        f"[sources.{SOURCE}].secret",
        order_path="data.order_id",
        type_path="type",
        fixed_type=None,
        time_path="data.created_at",
    )
    return adapters


def with_database(url: str, name: str) -> str:
    """The same server URL, pointed at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin_execute(url: str, statement: LiteralString) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def veriff_headers(body: bytes, secret: str = VERIFF_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-hmac-signature": hmac_sha256_hex(secret, body)}


def post_purchase_headers(
    body: bytes,
    msg_id: str | None = None,
    timestamp: int | None = None,
    secret: str = POST_PURCHASE_SECRET,
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_sign(secret, msg_id, timestamp, body),
    }


class _CommandProcess:
    """A ``hookledger`` command in a subprocess, its output kept in a log file."""

    name = "process"

    def __init__(self, args: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.command = [sys.executable, "-m", "hookledger.cli", *args]
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        # The process's file-descriptor limit, when a test sets one.
        self.nofile: int | None = None

    def _ready(self) -> bool:
        raise NotImplementedError

    def _launch(self, timeout: float) -> None:
        # The child writes to its own copy of the descriptor; ours closes at once.
        with self.log_path.open("ab") as log:
            # prlimit rather than a preexec function: this process has threads.
            limit = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--"]
            self.proc = subprocess.Popen(
                [*(limit if self.nofile else []), *self.command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.output()}")
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready: {self.output()}")

    def kill(self) -> None:
        """SIGKILL: no draining, no goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ServerProcess(_CommandProcess):
    """``hookledger serve`` in a subprocess, as an operator runs it."""

    name = "server"

    def __init__(
        self,
        database_url: str,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        *,
        default_shape: bool = False,
    ) -> None:
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "HOOKLEDGER_DATABASE_URL": database_url,
            "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
            "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
            "HOOKLEDGER_SHOPIFY_SECRET": SHOPIFY_SECRET,
            "HOOKLEDGER_STRIPE_SECRET": STRIPE_SECRET,
            "HOOKLEDGER_AUTHORIZENET_SECRET": AUTHORIZENET_SECRET,
            "HOOKLEDGER_SENDGRID_PUBLIC_KEY": SENDGRID_PUBLIC_KEY,
            "HOOKLEDGER_PROVIDERS_FILE": str(providers_file()),
            # Intake tests count the ledger's rows: the countdown's own decisions
            # would add to them. Tests of the background work switch it back on.
            "HOOKLEDGER_BACKGROUND": "false",
            **(env or {}),
        }
        log_path = Path(tempfile.gettempdir()) / f"hookledger-test-server-{self.port}.log"
        # One process, its background work inside, unless a test asks for more:
        # the default (one per CPU) has tests of its own (``default_shape``).
        chosen = default_shape or any(a.startswith("--workers") for a in self.args)
        shape = [] if chosen else ["--workers", "1"]
        command = ["serve", "--port", str(self.port), *shape, *self.args]
        super().__init__(command, environment, log_path)

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self._launch(timeout)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


class WorkerProcess(_CommandProcess):
    """``hookledger worker`` in a subprocess: projections, policy, timers, actions."""

    name = "worker"

    def __init__(self, database_url: str, env: Mapping[str, str] | None = None) -> None:
        environment = {**os.environ, "HOOKLEDGER_DATABASE_URL": database_url, **(env or {})}
        log_path = Path(tempfile.gettempdir()) / f"hookledger-test-worker-{uuid.uuid4().hex}.log"
        super().__init__(["worker"], environment, log_path)

    def start(self, timeout: float = 20.0) -> WorkerProcess:
        self._launch(timeout)
        return self

    def _ready(self) -> bool:
        return "hookledger worker running" in self.output()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Poll ``check`` until it holds; a runner's progress is only visible in the database."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
