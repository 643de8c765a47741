"""The countdown end to end: a real server, a window of 600 ms, real webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.countdown_helpers import (
    HEADSTART,
    WINDOW_ENV,
    consumed,
    countdown_state,
    expiry_lateness,
    now_order,
    types_of,
    witness_expiry,
)
from tests.e2e_helpers import (
    decision_body,
    run_cli,
    send_post_purchase,
    send_veriff,
    wait_for,
)
from tests.support import ServerProcess


@pytest.fixture
def countdown_server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, env=WINDOW_ENV).start()
    yield process
    process.stop()


def test_an_order_alone_expires_within_a_second_of_its_due_time(
    countdown_server: ServerProcess, database_url: str
) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    # Ahead: its reminder's timer must be set before the reminder time.
    assert send_post_purchase(countdown_server.url, now_order(order, HEADSTART)).status_code == 200
    lateness = wait_for(lambda: expiry_lateness(database_url, order), timeout=15)
    assert lateness is not None, types_of(database_url, order)
    assert 0 <= lateness < 1.0
    history = wait_for(
        lambda: (t := types_of(database_url, order)).count("action.dry_run") >= 3 and t, 15
    )
    assert history, types_of(database_url, order)
    assert history[:3] == ["order.created", "countdown.started", "countdown.reminder_due"]
    assert {"countdown.expired", "order.cancelled"} <= set(history)
    state = httpx.get(f"{countdown_server.url}/api/v1/orders/{order}", timeout=5).json()
    assert state["countdown"]["state"] == "expired"
    assert state["order"]["status"] == "cancelled"
    assert {a["action"] for a in state["actions"]} == {"email.reminder", "refund", "email.expired"}
    assert all(a["idempotency_key"] for a in state["actions"])


def test_an_order_approved_before_its_due_time_is_satisfied_and_never_expires(
    countdown_server: ServerProcess, database_url: str
) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    send_post_purchase(countdown_server.url, now_order(order, HEADSTART))
    assert send_veriff(countdown_server.url, decision_body(order)).status_code == 200
    assert wait_for(lambda: countdown_state(database_url, order) == "satisfied", 10)
    witness_expiry(countdown_server.url, database_url, HEADSTART)
    history = types_of(database_url, order)
    assert "countdown.satisfied" in history
    assert "countdown.expired" not in history


def test_a_verification_before_its_order_means_the_order_never_expires(
    countdown_server: ServerProcess, database_url: str
) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    decided = send_veriff(countdown_server.url, decision_body(order))
    assert decided.status_code == 200
    # Taken in by every consumer before the order exists.
    assert wait_for(lambda: consumed(database_url, decided.json()["position"]), 10)
    send_post_purchase(countdown_server.url, now_order(order))
    assert wait_for(lambda: countdown_state(database_url, order) == "satisfied", 10)
    witness_expiry(countdown_server.url, database_url)
    assert "countdown.expired" not in types_of(database_url, order)
    status = httpx.get(f"{countdown_server.url}/api/v1/orders/{order}", timeout=5).json()
    assert status["verification"]["latest_decision"] == "approved"


def test_metrics_show_each_consumer_s_lag(countdown_server: ServerProcess) -> None:
    send_post_purchase(countdown_server.url, now_order(f"o-{uuid.uuid4().hex[:8]}"))

    def lag_lines() -> list[str]:
        text = httpx.get(f"{countdown_server.url}/metrics", timeout=5).text
        return [line for line in text.splitlines() if line.startswith("hookledger_consumer_lag")]

    lines = wait_for(lambda: len(lag_lines()) >= 8 and lag_lines(), 10)
    assert lines
    assert 'hookledger_consumer_lag_events{consumer="projection.countdowns"}' in "\n".join(lines)
    assert any(line.startswith('hookledger_consumer_lag_seconds{consumer="policy.countdown"}')
               for line in lines)  # fmt: skip


def test_an_unknown_order_is_404(countdown_server: ServerProcess) -> None:
    response = httpx.get(f"{countdown_server.url}/api/v1/orders/nope", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_status_and_replay_on_the_command_line_agree_with_the_live_state(
    countdown_server: ServerProcess, database_url: str
) -> None:
    expired, satisfied = f"o-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    send_post_purchase(countdown_server.url, now_order(expired))
    send_post_purchase(countdown_server.url, now_order(satisfied, HEADSTART))
    send_veriff(countdown_server.url, decision_body(satisfied))
    assert wait_for(lambda: countdown_state(database_url, expired) == "expired", 15)
    assert wait_for(lambda: countdown_state(database_url, satisfied) == "satisfied", 15)

    def status(order: str) -> dict[str, Any]:
        done = run_cli(database_url, "status", order, "--json")
        assert done.returncode == 0, done.stderr
        state: dict[str, Any] = json.loads(done.stdout)
        for section in ("order", "verification", "countdown"):
            if state[section]:  # what a rebuild rewrites or the clock moves
                state[section].pop("updated_at")
                state[section].pop("seconds_left", None)
        return state

    before = {order: status(order) for order in (expired, satisfied)}
    replayed = run_cli(database_url, "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "rebuilt orders, verifications, countdowns" in replayed.stdout
    assert "replay:" in replayed.stderr  # progress, as plain lines off a terminal
    after = {order: status(order) for order in (expired, satisfied)}
    assert after == before
    text = run_cli(database_url, "status", expired)
    assert "expired" in text.stdout and "refund" in text.stdout
    assert run_cli(database_url, "status", "no-such-order").returncode == 1
    assert run_cli(database_url, "replay", "nothing").returncode == 2
