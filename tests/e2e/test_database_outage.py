"""The database goes away under a running server, then comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.e2e_helpers import (
    assert_error,
    count_events,
    decision_body,
    event_row,
    order_body,
    run_cli,
    send_post_purchase,
    send_veriff,
)
from tests.proxy import TcpProxy
from tests.support import ServerProcess

RECOVERY_SECONDS = 15.0


def through(database_url: str, proxy: TcpProxy) -> str:
    """The same database, reached through the proxy (over TCP, whatever the original)."""
    parts = urlsplit(database_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def upstream(database_url: str) -> tuple[str, int]:
    """Where the database really listens: a TCP address, or a unix socket's directory."""
    parts = urlsplit(database_url)
    socket_dir = dict(parse_qsl(parts.query)).get("host")
    return (socket_dir or parts.hostname or "127.0.0.1", parts.port or 5432)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(*upstream(database_url)) as running:
        yield running


def test_outage_answers_503_and_recovers_without_a_restart(
    database_url: str, proxy: TcpProxy
) -> None:
    server = ServerProcess(through(database_url, proxy)).start()
    try:
        before = send_post_purchase(server.url, order_body("o-1"))
        assert before.json() == {"recorded": True, "position": 1}
        assert proxy.connections > 0

        proxy.cut()

        during = {
            f"msg_outage_{n}": json.dumps(order_body("o-1", seq=n)).encode() for n in range(3)
        }
        for msg_id, raw in during.items():
            response = send_post_purchase(server.url, raw, msg_id=msg_id)
            assert_error(response, 503)
            assert response.headers["retry-after"].isdigit()
            # What a caller can act on; the driver's text stays in the log.
            assert response.json() == {
                "error": "database_unavailable",
                "detail": "database unavailable; retry after 2 s",
            }
        assert_error(send_veriff(server.url, decision_body("o-1")), 503)

        health = httpx.get(server.url + "/health", timeout=10)
        assert health.status_code == 503
        assert "retry-after" in health.headers
        assert health.json() == {
            "status": "unavailable",
            "detail": "database unavailable; retry after 2 s",
        }
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        assert count_events(database_url) == 1

        proxy.restore()

        deadline = time.monotonic() + RECOVERY_SECONDS
        answers: dict[str, dict[str, object]] = {}
        while len(answers) < len(during) and time.monotonic() < deadline:
            for msg_id, raw in during.items():
                if msg_id in answers:
                    continue
                response = send_post_purchase(server.url, raw, msg_id=msg_id)
                if response.status_code == 200:
                    answers[msg_id] = response.json()
                else:
                    assert_error(response, 503)
            time.sleep(0.2)
        assert set(answers) == set(during), "webhooks are not recorded again after the outage"
        # Nothing of the refused attempts had been kept: each is new now, not a resend.
        assert all(answer.get("recorded") is True for answer in answers.values()), answers

        health = httpx.get(server.url + "/health", timeout=10)
        while health.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = httpx.get(server.url + "/health", timeout=10)
        assert health.status_code == 200
    finally:
        server.stop()

    assert count_events(database_url) == 1 + len(during)
    for msg_id in during:
        row = event_row(database_url, "post-purchase", msg_id)
        assert row is not None and row["stream"] == "order-o-1"
    verified = run_cli(database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "4 events in 1 stream verify" in verified.stdout
