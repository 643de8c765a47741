"""The operator's series in /metrics: safe mode, how long deliveries take, timers
waiting and overdue, dead letters, and every refusal code from the start; and
/metrics behind its own token when one is set."""

from __future__ import annotations

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e_helpers import order_body, run_cli, send_post_purchase
from tests.support import ServerProcess

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_show_safe_mode_timings_timers_and_dead_letters(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_METRICS_TOKEN": TOKEN}).start()
    try:
        assert send_post_purchase(server.url, order_body("m-1")).status_code == 200
        assert httpx.get(server.url + "/metrics", timeout=10).status_code == 401
        answer = httpx.get(server.url + "/metrics", timeout=10,
                           headers={"authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert answer.status_code == 200
        # A scraper that sends no header (Cloud Run's sidecar) gives it as a parameter.
        assert httpx.get(server.url + "/metrics", params={"token": TOKEN}).status_code == 200
        assert httpx.get(server.url + "/metrics", params={"token": "wrong"}).status_code == 401
        found = samples(answer.text)
    finally:
        server.stop()
    assert found["hookledger_safe_mode", ()] == 1
    assert found["hookledger_webhook_seconds_count", (("provider", "post-purchase"),)] == 1
    assert found["hookledger_webhook_seconds_count", (("provider", "veriff"),)] == 0
    for name in ("hookledger_timers_pending", "hookledger_timers_overdue"):
        assert (name, ()) in found
    for kind in ("action", "task"):
        assert found["hookledger_dead_letters", (("kind", kind),)] == 0
    for provider in ("sendgrid", "authorizenet"):
        key = ("hookledger_outbound_calls_total", (("provider", provider), ("result", "retry")))
        assert found[key] == 0
        assert found["hookledger_outbound_seconds_count", (("provider", provider),)] == 0
    for outcome in ("rate_limited", "overloaded"):
        key = ("hookledger_webhooks_total", (("outcome", outcome), ("provider", "stripe")))
        assert found[key] == 0


def test_the_last_verify_of_the_whole_ledger_shows_in_metrics(database_url: str) -> None:
    server = ServerProcess(database_url).start()
    try:
        assert send_post_purchase(server.url, order_body("v-1")).status_code == 200
        before = samples(httpx.get(server.url + "/metrics", timeout=10).text)
        assert run_cli(database_url, "verify").returncode == 0
        held = samples(httpx.get(server.url + "/metrics", timeout=10).text)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
            conn.execute("UPDATE events SET raw = 'forged'::bytea WHERE stream = 'order-v-1'")
            conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
        failed_run = run_cli(database_url, "verify")
        failed = samples(httpx.get(server.url + "/metrics", timeout=10).text)
    finally:
        server.stop()
    assert ("hookledger_verify_ok", ()) not in before  # no verify yet: nothing to say
    assert held["hookledger_verify_ok", ()] == 1
    assert held["hookledger_verify_last_run_timestamp_seconds", ()] > 0
    assert failed_run.returncode == 1 and "BROKEN" in failed_run.stdout
    assert failed["hookledger_verify_ok", ()] == 0
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT detail FROM verify_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None and row[0].startswith("BROKEN: stream order-v-1")
