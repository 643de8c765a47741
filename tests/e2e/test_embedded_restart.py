"""`serve` on the embedded default starts its Postgres again when it stops under
the running service, and says so in the log."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.e2e_helpers import order_body, send_post_purchase
from tests.support import ServerProcess

RECOVERY_SECONDS = 60


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_embedded_postgres_stopped_under_serve_is_started_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess("", env={"HOOKLEDGER_DATA_DIR": str(data)}).start(timeout=60)
    try:
        first = send_post_purchase(server.url, order_body("r-1"))
        assert first.json().get("recorded") is True, first.text
        pid = int((data / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # a fast shutdown, as `pg_ctl stop -m fast` does

        deadline = time.monotonic() + 10
        while _ready(server.url) and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = time.monotonic() + RECOVERY_SECONDS
        while not _ready(server.url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _ready(server.url), server.output()[-3000:]

        # The appender finds its connection gone and tries a fresh one: no 503.
        again = send_post_purchase(server.url, order_body("r-2"))
        assert again.json().get("recorded") is True, again.text
        assert int((data / "pg" / "postmaster.pid").read_text().split()[0]) != pid
        log = server.output()
        assert "embedded postgres stopped: restarting it" in log
        assert "embedded postgres restarted" in log
    finally:
        server.stop()
