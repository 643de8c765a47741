"""One signed event never stops the business: a real server, a 600 ms window.

The year-9999 order an attacker with a valid signature once got recorded is
refused at the door now; an event a consumer still cannot apply (here: values
a planted constraint refuses) is set aside, visibly, while later orders are
counted down, and a retry applies it once the cause is gone.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.countdown_helpers import (
    HEADSTART,
    WINDOW_ENV,
    expiry_lateness,
    now_order,
    timers_left,
    types_of,
)
from tests.e2e_helpers import (
    assert_error,
    count_events,
    order_body,
    run_cli,
    send_post_purchase,
    wait_for,
)
from tests.support import ServerProcess, signed

COUNTDOWNS = "projection.countdowns"


@pytest.fixture
def countdown_server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, env=WINDOW_ENV).start()
    yield process
    process.stop()


def quarantine_gauges(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    found = re.findall(r'^hookledger_quarantined_events\{consumer="([^"]+)"\} (\S+)$', text, re.M)
    return {name: float(value) for name, value in found}


def selftest(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/__selftest", timeout=10)
    check: dict[str, Any] = answer.json()["checks"]["quarantine"]
    return answer.status_code, check


def plant(database_url: str, statement: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(statement)


def test_an_order_from_the_year_9999_is_refused_and_records_nothing(
    countdown_server: ServerProcess, database_url: str
) -> None:
    before = count_events(database_url)
    body = order_body(f"o-{uuid.uuid4().hex[:8]}", createdAt="9999-12-31T23:59:59Z")
    answer = assert_error(send_post_purchase(countdown_server.url, body), 400, "malformed_body")
    assert "createdAt" in answer["detail"]
    assert "2000-01-01" in answer["detail"]
    assert count_events(database_url) == before


def test_an_event_a_consumer_cannot_apply_is_set_aside_and_later_orders_still_count_down(
    countdown_server: ServerProcess, database_url: str
) -> None:
    # Every consumer's series is there from the start, at zero.
    gauges = quarantine_gauges(countdown_server)
    assert gauges == {COUNTDOWNS: 0, "projection.orders": 0, "projection.verifications": 0,
                      "policy.countdown": 0, "tree": 0}  # fmt: skip
    poison, later = f"poison-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    plant(database_url, f"ALTER TABLE countdowns ADD CONSTRAINT planted "
                        f"CHECK (order_id <> '{poison}')")  # fmt: skip
    assert send_post_purchase(countdown_server.url, now_order(poison)).status_code == 200
    # Ahead: its reminder's timer must be set before the reminder time.
    assert send_post_purchase(countdown_server.url, now_order(later, HEADSTART)).status_code == 200

    # The later order is reminded and expires as if nothing had happened.
    assert wait_for(lambda: expiry_lateness(database_url, later) is not None, 20), types_of(
        database_url, later
    )
    assert "countdown.reminder_due" in types_of(database_url, later)

    listed = wait_for(lambda: poison in (done := run_cli(database_url, "quarantine")).stdout
                      and done, 20)  # fmt: skip
    assert listed, run_cli(database_url, "quarantine").stdout
    line = next(line for line in listed.stdout.splitlines() if poison in line)
    assert line.startswith(COUNTDOWNS)
    assert "countdown.started" in line and "DataRefused" in line
    assert wait_for(lambda: quarantine_gauges(countdown_server)[COUNTDOWNS] == 1, 10)
    assert quarantine_gauges(countdown_server)["policy.countdown"] == 0
    status, check = selftest(countdown_server)
    assert status == 200
    assert check["status"] == "degraded"
    assert f"{COUNTDOWNS}: 1" in check["reason"]
    assert "countdown.expired" not in types_of(database_url, poison)

    # Still refused: it stays, counted again, and the command says so.
    again = run_cli(database_url, "quarantine", "retry")
    assert again.returncode == 1
    assert "still fails" in again.stdout

    plant(database_url, "ALTER TABLE countdowns DROP CONSTRAINT planted")
    retried = run_cli(database_url, "quarantine", "retry", "--consumer", COUNTDOWNS)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "applied, no longer set aside" in retried.stdout
    assert run_cli(database_url, "quarantine").stdout.strip() == "no events set aside"
    assert quarantine_gauges(countdown_server)[COUNTDOWNS] == 0
    assert selftest(countdown_server)[1]["status"] == "ok"
    # Its countdown is projected now, so its timers fire: the order expires too.
    assert wait_for(lambda: expiry_lateness(database_url, poison) is not None, 20), types_of(
        database_url, poison
    )


HUGE = "x" * 100_000
# Signed bodies at the limits of JSON and of the folds, each either refused (400)
# or recorded and then applied by every consumer: never a 500, never set aside.
EXTREMES: list[tuple[str, bytes, str]] = [
    ("post-purchase", b'{"event": "order.created", "orderId": "%s", "orderTotal": 1e400}', "x"),
    ("post-purchase", b'{"event": "order.created", "orderId": "%s", "createdAt": NaN}', "x"),
    ("post-purchase", b'{"event": "order.created", "orderId": "%s", "orderTotal": 1%s}'
     % (b"%s", b"0" * 4000), "x"),
    ("post-purchase", b'{"event": "order.created", "orderId": "%s", "createdAt": 1%s}'
     % (b"%s", b"0" * 4000), "x"),
    ("post-purchase", json.dumps({"event": "order.created", "orderId": "%s",
     "orderTotal": "1e999999", "currency": HUGE, "customerEmail": HUGE, "createdAt": HUGE,
     "transactionId": HUGE}).encode(), "x"),
    ("shopify", json.dumps({"id": "%s", "total_price": "-1e-999999", "email": HUGE,
     "created_at": HUGE, "updated_at": "2026-01-01T00:00:00Z"}).encode(), "orders/create"),
    ("veriff", json.dumps({"verification": {"id": HUGE, "status": "approved",
     "vendorData": "%s"}}).encode(), "x"),
    ("veriff", json.dumps({"verification": {"id": "s", "status": "approved", "vendorData": "%s",
     "decisionTime": HUGE, "submissionTime": 1e308}}).encode(), "x"),
    ("stripe", json.dumps({"id": "evt_%s", "type": "order.created", "created": -1e308,
     "data": {"object": {"metadata": {"order_id": "%s"}}}}).encode(), "x"),
    ("sendgrid", json.dumps([{"sg_event_id": "%s", "event": "open", "timestamp": 1e300,
     "order_id": "%s"}]).encode(), "x"),
]  # fmt: skip


def test_bodies_at_every_limit_are_refused_or_applied_never_a_server_error(
    countdown_server: ServerProcess, database_url: str
) -> None:
    statuses = []
    orders = []
    for provider, template, topic in EXTREMES:
        order = f"x-{uuid.uuid4().hex[:8]}"
        orders.append(order)
        body = template.replace(b"%s", order.encode())
        answer = httpx.post(f"{countdown_server.url}/api/v1/{provider}/webhook", content=body,
                            headers=signed(provider, body, topic=topic), timeout=10)  # fmt: skip
        assert answer.status_code in (200, 400), answer.text
        statuses.append(answer.status_code)
    assert 200 in statuses and 400 in statuses

    def consumers_done() -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM checkpoints "
                "WHERE (name LIKE 'projection.%' OR name = 'policy.countdown') "
                "AND position >= (SELECT max(position) FROM events)"
            ).fetchone()
        return row is not None and row[0] == 4

    assert wait_for(consumers_done, 20)
    # The countdowns' timers fired, and their decisions applied in turn.
    assert wait_for(lambda: timers_left(database_url, orders) == 0, 20)
    assert wait_for(consumers_done, 20)
    assert run_cli(database_url, "quarantine").stdout.strip() == "no events set aside"
