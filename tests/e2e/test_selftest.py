"""The self-test: ``GET /__selftest`` and ``hookledger selftest``, one entry per
subsystem, 503 / exit status 1 when a critical one is in error."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from hookledger.checkpoint_key import new_private_pem
from tests.countdown_helpers import now_order
from tests.e2e_helpers import run_cli, send_post_purchase
from tests.support import ServerProcess

TOKEN = "operator-token-for-selftest"


@pytest.fixture
def guarded_server(database_url: str) -> Iterator[ServerProcess]:
    env = {"HOOKLEDGER_API_TOKEN": TOKEN, "HOOKLEDGER_CHECKPOINT_KEY": new_private_pem()}
    process = ServerProcess(database_url, env=env).start()
    yield process
    process.stop()


def selftest(database_url: str, **env: str) -> tuple[int, dict[str, Any]]:
    done = run_cli(database_url, "selftest", "--json", env=env)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in report["checks"].items()}


def test_a_healthy_service_answers_every_subsystem_and_needs_the_operator_token(
    guarded_server: ServerProcess,
) -> None:
    url = guarded_server.url + "/__selftest"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer nope"}, timeout=10).status_code == 401
    answer = httpx.get(url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["status"] == "ok"
    found = statuses(report)
    assert found == {
        "datastore": "ok",
        "ledger": "ok",
        **{f"inbound.{p}": "ok" for p in ("authorizenet", "post-purchase", "returns",
                                          "sendgrid", "shopify", "stripe", "veriff")},
        "outbound.sendgrid": "safe_mode",
        "outbound.payments": "safe_mode",
        "timers": "ok",
        "exporter": "ok",
        "quarantine": "ok",
        "proofs": "ok",
        "jobs": "ok",
        "secrets": "ok",
    }  # fmt: skip
    assert report["checks"]["exporter"]["reason"].startswith("not configured")
    assert report["checks"]["timers"]["reason"].startswith("postgres")


def test_a_missing_migration_is_a_critical_error_503_and_exit_status_1(
    server: ServerProcess, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
    answer = httpx.get(server.url + "/__selftest", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["checks"]["datastore"]["status"] == "error"
    code, report = selftest(database_url)
    assert code == 1
    assert report["status"] == "error"
    assert "migrations not applied: [6]" in report["checks"]["datastore"]["reason"]
    text = run_cli(database_url, "selftest")
    assert text.returncode == 1
    assert "overall: error" in text.stdout


def test_a_broken_hash_chain_fails_the_ledger_check(database_url: str) -> None:
    server = ServerProcess(database_url).start()
    try:
        order = f"st-{uuid.uuid4().hex[:8]}"
        assert send_post_purchase(server.url, now_order(order)).status_code == 200
    finally:
        server.stop()
    assert selftest(database_url)[1]["checks"]["ledger"]["status"] == "ok"
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE streams SET last_hash = repeat('0', 64) WHERE stream = %s",
                     (f"order-{order}",))  # fmt: skip
    code, report = selftest(database_url)
    assert code == 1
    assert report["checks"]["ledger"]["status"] == "error"
    assert f"order-{order}" in report["checks"]["ledger"]["reason"]


def test_a_provider_without_secret_and_actions_without_credentials_degrade_but_do_not_fail(
    database_url: str,
) -> None:
    code, report = selftest(database_url, HOOKLEDGER_SAFE_MODE="false",
                            HOOKLEDGER_SHOPIFY_SECRET="")  # fmt: skip
    assert code == 0
    assert report["status"] == "degraded"
    checks = report["checks"]
    assert checks["inbound.shopify"]["status"] == "error"
    assert "HOOKLEDGER_SHOPIFY_SECRET" in checks["inbound.shopify"]["reason"]
    assert checks["inbound.veriff"]["status"] == "ok"
    assert checks["outbound.sendgrid"]["status"] == "error"
    assert "HOOKLEDGER_SENDGRID_API_KEY" in checks["outbound.sendgrid"]["reason"]
    code, report = selftest(
        database_url,
        HOOKLEDGER_SAFE_MODE="false",
        HOOKLEDGER_SENDGRID_API_KEY="SG.selftest-key",
        HOOKLEDGER_AUTHORIZENET_LOGIN_ID="login",
        HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY="transaction-key",
    )
    assert statuses(report)["outbound.sendgrid"] == "ok"
    assert statuses(report)["outbound.payments"] == "ok"


def test_the_exporter_s_lag_is_read_from_its_checkpoint(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO checkpoints (name, position) VALUES ('exporter.bigquery', 0)")
    report = selftest(database_url)[1]
    assert report["checks"]["exporter"] == {
        "status": "ok",
        "reason": "at position 0, 0 events behind the ledger",
    }


def test_checkpoints_without_a_key_on_a_real_database_are_a_degradation_not_an_error(
    database_url: str,
) -> None:
    code, report = selftest(database_url, HOOKLEDGER_CHECKPOINT_KEY="")
    assert code == 0
    proofs = report["checks"]["proofs"]
    assert proofs["status"] == "degraded"
    assert "HOOKLEDGER_CHECKPOINT_KEY" in proofs["reason"]
