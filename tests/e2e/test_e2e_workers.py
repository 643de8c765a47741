"""Several server processes behind one port: `serve --workers 2`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.countdown_helpers import types_of
from tests.e2e_helpers import order_body, send_post_purchase, wait_for
from tests.support import ServerProcess, post_purchase_headers

DELIVERIES = 40


@pytest.fixture
def two_workers(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, args=["--workers", "2"]).start()
    yield process
    process.stop()


def test_metrics_of_any_worker_count_every_workers_deliveries(two_workers: ServerProcess) -> None:
    # A new connection each time, so that both workers take some.
    for n in range(DELIVERIES):
        body = json.dumps({"event": "order.created", "orderId": f"w-{n}"}).encode()
        answer = httpx.post(
            two_workers.url + "/api/v1/post-purchase/webhook",
            content=body,
            headers=post_purchase_headers(body, msg_id=f"msg_{uuid.uuid4().hex}"),
        )
        assert answer.status_code == 200
    for _ in range(6):  # whichever worker answers the scrape
        text = httpx.get(two_workers.url + "/metrics").text
        found = re.search(
            r'hookledger_webhooks_total\{outcome="recorded",provider="post-purchase"\} (\S+)',
            text,
        )
        assert found is not None, text
        assert float(found.group(1)) == DELIVERIES


CPUS = len(os.sched_getaffinity(0))


@pytest.fixture
def default_serve(database_url: str) -> Iterator[ServerProcess]:
    """`hookledger serve` as a newcomer starts it: no options."""
    process = ServerProcess(database_url, env={"HOOKLEDGER_BACKGROUND": "true"},
                            default_shape=True).start()  # fmt: skip
    yield process
    process.stop()


def background_pid(server: ServerProcess) -> int | None:
    """The background process's pid, as /__selftest names it."""
    jobs = httpx.get(server.url + "/__selftest", timeout=10).json()["checks"]["jobs"]
    found = re.search(r"running \(pid (\d+)\)", jobs["reason"])
    return int(found.group(1)) if found else None


@pytest.mark.skipif(CPUS < 2, reason="one CPU: serve's default is then one process")
def test_serve_by_default_runs_an_intake_process_per_cpu_and_the_background_work_once(
    default_serve: ServerProcess, database_url: str
) -> None:
    assert f"{CPUS} intake processes and a background process" in default_serve.output()
    order = f"d-{uuid.uuid4().hex[:8]}"
    assert send_post_purchase(default_serve.url, order_body(order)).status_code == 200
    # The background process folds it and starts its countdown, once.
    assert wait_for(lambda: "countdown.started" in types_of(database_url, order), 20)
    assert types_of(database_url, order).count("countdown.started") == 1
    assert wait_for(lambda: background_pid(default_serve), 10)
    # Its counts join the intake processes' in /metrics.
    text = httpx.get(default_serve.url + "/metrics", timeout=10).text
    assert 'hookledger_background_restarts_total{job="timers"} 0.0' in text
    assert 'hookledger_webhooks_total{outcome="recorded",provider="post-purchase"} 1.0' in text


@pytest.mark.skipif(CPUS < 2, reason="one CPU: serve's default is then one process")
def test_a_killed_background_process_is_started_again_and_the_work_goes_on(
    default_serve: ServerProcess, database_url: str
) -> None:
    first = wait_for(lambda: background_pid(default_serve), 15)
    assert first
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := background_pid(default_serve)) != first and p, 20)
    assert second and second != first
    jobs = httpx.get(default_serve.url + "/__selftest", timeout=10).json()["checks"]["jobs"]
    assert "1 restarts so far" in jobs["reason"]
    assert "background process ended: starting it again" in default_serve.output()
    order = f"k-{uuid.uuid4().hex[:8]}"
    assert send_post_purchase(default_serve.url, order_body(order)).status_code == 200
    assert wait_for(lambda: "countdown.started" in types_of(database_url, order), 20)


@pytest.mark.skipif(CPUS < 2, reason="one CPU: serve's default is then one process")
def test_the_background_process_ends_when_serve_is_killed(
    default_serve: ServerProcess,
) -> None:
    pid = wait_for(lambda: background_pid(default_serve), 15)
    assert pid
    default_serve.kill()
    assert wait_for(lambda: not _alive(pid), 10), "the background process outlived serve"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (reaped by nobody yet) counts as gone.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    return False
