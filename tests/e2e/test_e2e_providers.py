"""The provider catalogue over real HTTP: every provider's signed deliveries are
recorded on the right stream, resends are idempotent, refusals are counted by
provider and reason, and the intake's limits hold for every provider."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from events.chain import join
from hookledger.samples import sample_body
from tests.e2e_helpers import assert_error, cli_env, count_events
from tests.support import PROVIDERS, ROOT, SOURCE, ServerProcess, signed

NEW_PROVIDERS = ("shopify", "stripe", "authorizenet", "sendgrid", SOURCE)


def path(provider: str) -> str:
    return f"/api/v1/{provider}/webhook"


def post(server: ServerProcess, provider: str, body: bytes, headers: dict[str, str]) -> Any:
    return httpx.post(server.url + path(provider), content=body, headers=headers, timeout=10)


def delivery(provider: str, order_id: str) -> tuple[bytes, list[str]]:
    """A body for ``order_id`` and the types of the events it holds."""
    if provider == "shopify":
        return sample_body("shopify", "orders/create", order_id), ["order.created"]
    if provider == "stripe":
        body = sample_body("stripe", "payment_intent.succeeded", order_id)
        return body, ["payment_intent.succeeded"]
    if provider == "authorizenet":
        return sample_body("authorizenet", "payment.refunded", order_id), ["payment.refunded"]
    if provider == "sendgrid":
        body = sample_body("sendgrid", "email.delivered", order_id)
        return body, ["email.processed", "email.delivered"]
    body = json.dumps({"type": "return.requested", "data": {"order_id": order_id}}).encode()
    return body, ["return.requested"]


def order_stream(database_url: str, order_id: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT provider, type, stream_version FROM events WHERE stream = %s "
            "ORDER BY stream_version",
            (f"order-{order_id}",),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.mark.parametrize("provider", NEW_PROVIDERS)
def test_signed_delivery_is_recorded_on_the_orders_stream_and_a_resend_is_idempotent(
    shared_server: ServerProcess, shared_database_url: str, provider: str
) -> None:
    order_id = str(uuid.uuid4().int % 10**12)
    body, types = delivery(provider, order_id)
    headers = signed(provider, body)
    first = post(shared_server, provider, body, headers)
    assert first.status_code == 200, first.text
    resent = post(shared_server, provider, body, headers)
    assert resent.status_code == 200, resent.text

    assert order_stream(shared_database_url, order_id) == [
        (provider, kind, version) for version, kind in enumerate(types, start=1)
    ]
    if provider == "sendgrid":
        assert first.json()["recorded"] == 2 and first.json()["idempotent"] == 0
        assert resent.json()["recorded"] == 0 and resent.json()["idempotent"] == 2
    else:
        assert first.json()["recorded"] is True
        assert resent.json() == {"idempotent": True, "position": first.json()["position"]}


def sg(event: str, sg_event_id: str, order_id: str) -> dict[str, Any]:
    return {"email": "c@example.com", "timestamp": 1700000000, "event": event,
            "sg_event_id": sg_event_id, "order_id": order_id,
            "hookledger_action": f"email.sent:{order_id}"}  # fmt: skip


def test_sendgrid_batch_mixing_new_and_recorded_elements_records_only_the_new_ones(
    shared_server: ServerProcess, shared_database_url: str
) -> None:
    order_id = f"sg-{uuid.uuid4().hex[:8]}"
    a, b, c = (sg(kind, f"{order_id}-{n}", order_id)
               for n, kind in enumerate(("processed", "delivered", "open")))  # fmt: skip
    first_body = json.dumps([a, b]).encode() + b"\r\n"
    second_body = json.dumps([b, c], indent=1).encode()  # other spacing, b's bytes differ
    first = post(shared_server, "sendgrid", first_body, signed("sendgrid", first_body)).json()
    second = post(shared_server, "sendgrid", second_body, signed("sendgrid", second_body))
    assert second.status_code == 200, second.text
    answer = second.json()
    assert (answer["recorded"], answer["idempotent"]) == (1, 1)
    assert [e["event_id"] for e in answer["events"]] == [b["sg_event_id"], c["sg_event_id"]]
    assert answer["events"][0]["position"] == first["events"][1]["position"]
    assert answer["events"][0]["idempotent"] is True
    assert answer["events"][1]["recorded"] is True
    assert answer["delivery"]["recorded"] is True

    assert [t for _, t, _ in order_stream(shared_database_url, order_id)] == [
        "email.processed", "email.delivered", "email.open"
    ]  # fmt: skip
    # Each delivery is kept whole (its personal values apart, joined back in
    # place), so SendGrid's signature over it can be checked again.
    with psycopg.connect(shared_database_url) as conn:
        rows = conn.execute(
            "SELECT raw, personal, ARRAY(SELECT value FROM personal_values AS p"
            " WHERE p.position = e.position ORDER BY n) FROM events AS e"
            " WHERE type = 'sendgrid.delivery' AND event_id = ANY(%s)",
            ([first["delivery"]["event_id"], answer["delivery"]["event_id"]],),
        ).fetchall()
    whole = [join(bytes(raw), [c["at"] for c in cuts or []], [bytes(v) for v in values])
             for raw, cuts, values in rows]  # fmt: skip
    assert sorted(whole) == sorted([first_body, second_body])
    assert all(b"c@example.com" not in bytes(raw) for raw, _, _ in rows)


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
elements = st.fixed_dictionaries(
    {},
    optional={
        "sg_event_id": st.sampled_from(["e1", "e2", "e3", ""]) | scalars,
        "event": st.sampled_from(["open", "bounce", "spam report"]) | scalars,
        "order_id": st.sampled_from(["o1", " ", "o\u0000"]) | scalars,
        "sg_message_id": scalars,
        "timestamp": scalars,
        "extra": st.recursive(scalars, lambda inner: st.lists(inner, max_size=2), max_leaves=4),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(elements | scalars, max_size=5), spacing=st.sampled_from([None, 1]))
def test_signed_sendgrid_batches_of_any_shape_are_recorded_or_refused_never_a_server_error(
    shared_server: ServerProcess, batch: list[Any], spacing: int | None
) -> None:
    body = json.dumps(batch, indent=spacing).encode()
    response = post(shared_server, "sendgrid", body, signed("sendgrid", body))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        answer = response.json()
        assert answer["recorded"] + answer["idempotent"] == len(batch)


# -- the intake's limits, for every provider -------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


REFUSALS = {
    "wrong content type": (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    "form body": (b"a=1", {"content-type": "application/x-www-form-urlencoded"}, 415,
                  "unsupported_media_type"),
    "nested too deeply": (nested(200), {}, 400, "malformed_body"),
    "not json": (b"{broken", {}, 400, "malformed_body"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_refuses_what_the_intake_refuses_and_records_nothing(
    shared_server: ServerProcess, shared_database_url: str, provider: str, case: str
) -> None:
    body, extra, status, error = REFUSALS[case]
    before = count_events(shared_database_url)
    response = post(shared_server, provider, body, {**signed(provider, body), **extra})
    assert_error(response, status, error)
    assert count_events(shared_database_url) == before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_refuses_a_body_signed_for_another_body(
    shared_server: ServerProcess, shared_database_url: str, provider: str
) -> None:
    body, _ = delivery(provider, "1") if provider in NEW_PROVIDERS else (b"{}", [])
    before = count_events(shared_database_url)
    response = post(shared_server, provider, body + b" ", signed(provider, body))
    assert_error(response, 401, "signature_rejected")
    assert count_events(shared_database_url) == before


def test_body_over_the_limit_is_refused_for_every_provider(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_MAX_BODY_BYTES": "256"}).start()
    try:
        body = json.dumps([{"pad": "x" * 300}]).encode()
        for provider in PROVIDERS:
            response = post(server, provider, body, signed(provider, body))
            assert_error(response, 413, "body_too_large")
        assert count_events(database_url) == 0
    finally:
        server.stop()


# -- metrics -----------------------------------------------------------------------


def samples(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_give_every_provider_its_series_and_count_refusals_by_reason(
    server: ServerProcess,
) -> None:
    fresh = samples(server)
    for provider in PROVIDERS:
        for outcome in ("recorded", "duplicate", "conflict", "signature_rejected"):
            key = ("hookledger_webhooks_total", (("outcome", outcome), ("provider", provider)))
            assert fresh[key] == 0, key
        key = ("hookledger_signature_rejections_total",
               (("provider", provider), ("reason", "stale")))  # fmt: skip
        assert fresh[key] == 0

    body, _ = delivery("stripe", "77")
    stale = signed("stripe", body, now=1_000_000_000)
    post(server, "stripe", body, stale)
    post(server, "stripe", body, {"content-type": "application/json"})
    post(server, "shopify", body, signed("stripe", body))
    batch, _ = delivery("sendgrid", "77")
    post(server, "sendgrid", batch, signed("sendgrid", batch))
    post(server, "sendgrid", batch, signed("sendgrid", batch))

    counted = samples(server)

    def count(metric: str, **labels: str) -> float:
        return counted[(metric, tuple(sorted(labels.items())))]

    rejections = "hookledger_signature_rejections_total"
    assert count(rejections, provider="stripe", reason="stale") == 1
    assert count(rejections, provider="stripe", reason="missing") == 1
    assert count(rejections, provider="shopify", reason="missing") == 1
    assert count("hookledger_webhooks_total", provider="stripe", outcome="signature_rejected") == 2
    assert count("hookledger_webhooks_total", provider="sendgrid", outcome="recorded") == 1
    assert count("hookledger_webhooks_total", provider="sendgrid", outcome="duplicate") == 1
    events = "hookledger_webhook_events_total"
    assert count(events, provider="sendgrid", outcome="recorded") == 2
    assert count(events, provider="sendgrid", outcome="duplicate") == 2


# -- configuration and the command line ---------------------------------------------


def test_a_bad_providers_file_stops_the_start_naming_the_file_and_the_problem(
    database_url: str, tmp_path: Any
) -> None:
    bad = tmp_path / "providers.toml"
    bad.write_text('[sources.stripe]\nsecret = "whsec_c2VjcmV0"\ntype = "x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "hookledger.cli", "serve", "--port", "1"],
        env=cli_env(database_url, HOOKLEDGER_PROVIDERS_FILE=str(bad)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "'stripe' is a built-in provider" in result.stderr


def send(database_url: str, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env, **cli_env(database_url)}
    return subprocess.run(
        [sys.executable, "-m", "hookledger.cli", "send", *args, "--url", server.url],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_send_signs_each_providers_samples_the_providers_way(
    server: ServerProcess, database_url: str, tmp_path: Any
) -> None:
    for provider, sample in (("shopify", "orders/paid"), ("stripe", "charge.refunded"),
                             ("authorizenet", "payment.voided")):  # fmt: skip
        sent = send(database_url, server, provider, sample, "--order", "4242")
        assert sent.returncode == 0, sent.stdout + sent.stderr
    body = tmp_path / "return.json"
    body.write_text(json.dumps({"type": "return.requested", "data": {"order_id": "4242"}}))
    sent = send(database_url, server, SOURCE, str(body))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert [(p, t) for p, t, _ in order_stream(database_url, "4242")] == [
        ("shopify", "order.paid"),
        ("stripe", "charge.refunded"),
        ("authorizenet", "payment.voided"),
        (SOURCE, "return.requested"),
    ]


def test_cli_send_sendgrid_without_the_private_key_says_why_it_cannot_sign(
    server: ServerProcess, database_url: str
) -> None:
    refused = send(database_url, server, "sendgrid", "email.open")
    assert refused.returncode == 2
    assert "private key" in refused.stderr
    assert count_events(database_url) == 0
