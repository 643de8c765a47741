"""Helpers shared by the tests: databases, a real server process, signing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import LiteralString
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from api.signatures import hmac_sha256_hex, standard_webhooks_sign

VERIFF_SECRET = "test-veriff-secret"
POST_PURCHASE_SECRET = "whsec_dGVzdC1wb3N0LXB1cmNoYXNlLXNlY3JldA=="

ROOT = Path(__file__).resolve().parents[1]


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


class ServerProcess:
    """``hookledger serve`` in a subprocess, as an operator runs it."""

    def __init__(
        self,
        database_url: str,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "HOOKLEDGER_DATABASE_URL": database_url,
            "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
            "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
            # Intake tests count the ledger's rows: the countdown's own decisions
            # would add to them. Tests of the background work switch it back on.
            "HOOKLEDGER_BACKGROUND": "false",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"hookledger-test-server-{self.port}.log"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookledger.cli", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.output()}")

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


class WorkerProcess:
    """``hookledger worker`` in a subprocess: projections, policy, timers, actions."""

    def __init__(self, database_url: str, env: Mapping[str, str] | None = None) -> None:
        self.env = {**os.environ, "HOOKLEDGER_DATABASE_URL": database_url, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = (
            Path(tempfile.gettempdir()) / f"hookledger-test-worker-{uuid.uuid4().hex}.log"
        )

    def start(self, timeout: float = 20.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookledger.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.output()}")
            if "hookledger worker running" in self.output():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"worker did not start: {self.output()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
