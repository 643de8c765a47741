"""The server under test: ``hookledger serve`` started, waited for, stopped."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.ingest.requests import POST_PURCHASE_SECRET, VERIFF_SECRET
from benchmarks.ingest.trees import CodeTree
from benchmarks.machine import descendants
from hookledger.checkpoint_key import new_private_pem

# A fresh key per benchmark run, made the way a deployment's PEM would be.
CHECKPOINT_KEY = new_private_pem()
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    # http.client rather than httpx/urllib: no proxy settings can send this off the machine.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """``hookledger serve`` as an operator runs it, in its own process group."""

    def __init__(
        self,
        database_url: str,
        workers: int,
        group_commit: bool,
        log: Path,
        tree: CodeTree,
        *,
        default_shape: bool = False,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.default_shape = default_shape
        self.log = log
        self.tree = tree
        self.env = tree.environment({
            **os.environ,
            "HOOKLEDGER_DATABASE_URL": database_url,
            "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
            "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
            "HOOKLEDGER_GROUP_COMMIT": "true" if group_commit else "false",
            # Closes the audit reads as in production, and silences the warning about it.
            "HOOKLEDGER_API_TOKEN": uuid.uuid4().hex,
            # Checkpointing on, as in production: the tree follows the intake and
            # a checkpoint is signed every interval (a tree without it ignores this).
            "HOOKLEDGER_CHECKPOINT_KEY": CHECKPOINT_KEY,
        })  # fmt: skip
        if default_shape:
            self.env["HOOKLEDGER_BACKGROUND"] = "true"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            # As a newcomer starts it (one intake process per CPU, the background
            # work in a process of its own), or intake alone: projections and timers
            # run in `hookledger worker` processes of their own in a deployment
            # sized for this load.
            shape = [] if self.default_shape else ["--workers", str(self.workers), "--no-workers"]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hookledger.cli", "serve", "--port", str(self.port), *shape],
                env=self.env,
                cwd=self.tree.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Ctrl-C reaches only the harness, which then stops the server cleanly.
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if http_get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT:.0f} s:\n{self.tail()}")

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc is not None else []

    def metrics(self) -> str:
        """The text of ``/metrics`` (with several workers, any worker's sums them all)."""
        return http_get(self.port, "/metrics", 10.0)[1].decode()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(
                    f"  server ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it",
                    file=sys.stderr,
                )
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
