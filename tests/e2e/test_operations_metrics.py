"""The operator's series in /metrics: safe mode, how long deliveries take, timers
waiting and overdue, dead letters, and every refusal code from the start; and
/metrics behind its own token when one is set."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e_helpers import order_body, send_post_purchase
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
