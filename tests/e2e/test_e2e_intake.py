"""The webhook intake over real HTTP, against ``hookledger serve`` and a real Postgres."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e_helpers import (
    POST_PURCHASE_PATH,
    VERIFF_PATH,
    assert_error,
    count_events,
    decision_body,
    event_row,
    order_body,
    send_post_purchase,
    send_veriff,
)
from tests.support import (
    POST_PURCHASE_SECRET,
    VERIFF_SECRET,
    ServerProcess,
    veriff_headers,
)
from tests.support import (
    post_purchase_headers as _pp,
)

OTHER_POST_PURCHASE_SECRET = "whsec_b3RoZXItcG9zdC1wdXJjaGFzZS1zZWNyZXQ="


# -- accepted deliveries -------------------------------------------------------


def test_new_webhook_is_recorded_with_its_ledger_position(
    server: ServerProcess, database_url: str
) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = send_post_purchase(server.url, order_body("1001"), msg_id=msg_id)
    assert first.status_code == 200
    assert first.json() == {"recorded": True, "position": 1}

    second = send_veriff(server.url, decision_body("1001", session="s-1"))
    assert second.status_code == 200
    assert second.json() == {"recorded": True, "position": 2}

    row = event_row(database_url, "post-purchase", msg_id)
    assert row is not None
    assert row["position"] == 1
    assert (row["stream"], row["stream_version"], row["type"]) == ("order-1001", 1, "order.created")
    assert count_events(database_url) == 2


def test_resend_is_idempotent_and_answers_the_original_position(
    server: ServerProcess, database_url: str
) -> None:
    send_veriff(server.url, decision_body("7", session="s-other"))
    body = json.dumps(order_body("1002")).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    original = send_post_purchase(server.url, body, msg_id=msg_id)
    assert original.json() == {"recorded": True, "position": 2}

    # A provider's retry: same id and bytes, signed again with a later timestamp.
    again = send_post_purchase(server.url, body, msg_id=msg_id, timestamp=int(time.time()) + 5)
    assert again.status_code == 200
    assert again.json() == {"idempotent": True, "position": 2}

    veriff = json.dumps(decision_body("1002", session="s-2")).encode()
    recorded = send_veriff(server.url, veriff).json()
    assert send_veriff(server.url, veriff).json() == {
        "idempotent": True,
        "position": recorded["position"],
    }
    assert count_events(database_url) == 3


def test_same_event_id_with_another_body_is_a_conflict_and_not_recorded_again(
    server: ServerProcess, database_url: str
) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    original = json.dumps(order_body("1003")).encode()
    assert send_post_purchase(server.url, original, msg_id=msg_id).json()["recorded"] is True

    changed = send_post_purchase(server.url, order_body("1003", orderTotal=1.0), msg_id=msg_id)
    assert changed.status_code == 200
    assert changed.json() == {"idempotent": True, "conflict": True, "position": 1}
    assert "recorded" not in changed.json()

    row = event_row(database_url, "post-purchase", msg_id)
    assert row is not None and bytes(row["raw"]) == original
    assert count_events(database_url) == 1


def test_timestamp_within_five_minutes_is_accepted(
    server: ServerProcess, database_url: str
) -> None:
    late = send_post_purchase(server.url, order_body("1004"), timestamp=int(time.time()) - 240)
    early = send_post_purchase(server.url, order_body("1004"), timestamp=int(time.time()) + 240)
    assert late.status_code == 200 and early.status_code == 200
    assert count_events(database_url) == 2


# -- refused deliveries --------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    path: str
    content: bytes
    headers: dict[str, str]
    status: int
    error: str


def _nested(depth: int) -> bytes:
    return b'{"event":"order.created","orderId":"1","deep":' + b"[" * depth + b"]" * depth + b"}"


_VALID_ORDER = json.dumps(order_body("2001")).encode()

REFUSALS: dict[str, Callable[[], Refusal]] = {
    "malformed JSON, correctly signed (post-purchase)": lambda: Refusal(
        POST_PURCHASE_PATH, b'{"event": "order.created", ', _pp(b'{"event": "order.created", '),
        400, "malformed_body",
    ),
    "malformed JSON, correctly signed (veriff)": lambda: Refusal(
        VERIFF_PATH, b"{not json}", veriff_headers(b"{not json}"), 400, "malformed_body"
    ),
    "empty body, correctly signed": lambda: Refusal(
        POST_PURCHASE_PATH, b"", _pp(b""), 400, "malformed_body"
    ),
    "JSON array, correctly signed": lambda: Refusal(
        POST_PURCHASE_PATH, b"[1, 2]", _pp(b"[1, 2]"), 400, "malformed_body"
    ),
    "order without orderId, correctly signed": lambda: Refusal(
        POST_PURCHASE_PATH,
        b'{"event": "order.created"}',
        _pp(b'{"event": "order.created"}'),
        400,
        "malformed_body",
    ),
    "not a Veriff shape, correctly signed": lambda: Refusal(
        VERIFF_PATH, b'{"hello": "world"}', veriff_headers(b'{"hello": "world"}'),
        400, "malformed_body",
    ),
    "nested too deeply, correctly signed": lambda: Refusal(
        POST_PURCHASE_PATH, _nested(100), _pp(_nested(100)), 400, "malformed_body"
    ),
    "veriff without signature": lambda: Refusal(
        VERIFF_PATH, _VALID_ORDER, {"content-type": "application/json"},
        401, "signature_rejected",
    ),
    "veriff signed with another secret": lambda: Refusal(
        VERIFF_PATH, _VALID_ORDER, veriff_headers(_VALID_ORDER, "not-the-secret"),
        401, "signature_rejected",
    ),
    "veriff signature of other bytes": lambda: Refusal(
        VERIFF_PATH, _VALID_ORDER + b" ", veriff_headers(_VALID_ORDER), 401, "signature_rejected"
    ),
    "post-purchase without signature headers": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER, {"content-type": "application/json"},
        401, "signature_rejected",
    ),
    "post-purchase signed with another secret": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER,
        _pp(_VALID_ORDER, secret=OTHER_POST_PURCHASE_SECRET), 401, "signature_rejected",
    ),
    "post-purchase stale timestamp (over 5 min old)": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER, _pp(_VALID_ORDER, timestamp=int(time.time()) - 330),
        401, "signature_rejected",
    ),
    "post-purchase timestamp over 5 min ahead": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER, _pp(_VALID_ORDER, timestamp=int(time.time()) + 330),
        401, "signature_rejected",
    ),
    "post-purchase signature for another webhook-id": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER,
        {**_pp(_VALID_ORDER, msg_id="msg_a"), "webhook-id": "msg_b"},
        401, "signature_rejected",
    ),
    "unknown provider": lambda: Refusal(
        "/api/v1/nobody/webhook", _VALID_ORDER, veriff_headers(_VALID_ORDER), 404, "not_found"
    ),
    "text/plain content type": lambda: Refusal(
        VERIFF_PATH, _VALID_ORDER, {**veriff_headers(_VALID_ORDER), "content-type": "text/plain"},
        415, "unsupported_media_type",
    ),
    "form content type": lambda: Refusal(
        POST_PURCHASE_PATH, _VALID_ORDER,
        {**_pp(_VALID_ORDER), "content-type": "application/x-www-form-urlencoded"},
        415, "unsupported_media_type",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refused_delivery_answers_status_and_json_error_and_leaves_ledger_unchanged(
    case: str, shared_server: ServerProcess, shared_database_url: str
) -> None:
    refusal = REFUSALS[case]()
    before = count_events(shared_database_url)
    response = httpx.post(
        shared_server.url + refusal.path,
        content=refusal.content,
        headers=refusal.headers,
        timeout=10,
    )
    assert_error(response, refusal.status, refusal.error)
    assert count_events(shared_database_url) == before


def test_signature_is_checked_before_the_body_is_parsed(
    shared_server: ServerProcess, shared_database_url: str
) -> None:
    before = count_events(shared_database_url)
    response = httpx.post(
        shared_server.url + VERIFF_PATH,
        content=b"{broken",
        headers={"content-type": "application/json", "x-hmac-signature": "00" * 32},
    )
    assert_error(response, 401, "signature_rejected")
    assert count_events(shared_database_url) == before


def test_body_over_the_limit_is_413_counted_and_explained_declared_or_streamed(
    database_url: str,
) -> None:
    limit = 512
    server = ServerProcess(database_url, env={"HOOKLEDGER_MAX_BODY_BYTES": str(limit)}).start()
    try:
        padded = order_body("3001", note="x" * 1000)
        raw = json.dumps(padded).encode()
        declared = send_post_purchase(server.url, raw)
        body = assert_error(declared, 413, "body_too_large")
        assert str(limit) in body["detail"]

        def chunks() -> Iterator[bytes]:
            yield raw[:400]
            yield raw[400:]

        streamed = httpx.post(
            server.url + POST_PURCHASE_PATH,
            content=chunks(),
            headers=_pp(raw),
            timeout=10,
        )
        assert "content-length" not in streamed.request.headers
        refused = assert_error(streamed, 413, "body_too_large")
        assert str(limit) in refused["detail"]
        counted = _samples(server).get(
            (
                "hookledger_webhooks_total",
                (("outcome", "body_too_large"), ("provider", "post-purchase")),
            ),
            0.0,
        )
        assert counted == 2, "both refusals, declared and streamed, are counted"
        assert count_events(database_url) == 0

        # Exactly at the limit is still accepted.
        base = json.dumps(order_body("3001", note="")).encode()
        exact = json.dumps(order_body("3001", note="y" * (limit - len(base)))).encode()
        assert len(exact) == limit
        assert send_post_purchase(server.url, exact).json()["recorded"] is True
        assert count_events(database_url) == 1
    finally:
        server.stop()


def test_provider_without_a_secret_refuses_and_names_the_setting(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_VERIFF_SECRET": ""}).start()
    try:
        response = send_veriff(server.url, decision_body("4001"))
        body = assert_error(response, 401, "signature_rejected")
        assert "HOOKLEDGER_VERIFF_SECRET" in body["detail"]
        assert count_events(database_url) == 0
        # The other provider is unaffected.
        assert send_post_purchase(server.url, order_body("4001")).status_code == 200
    finally:
        server.stop()


def test_rotated_secrets_accept_both_old_and_new_signatures(database_url: str) -> None:
    both = f"{POST_PURCHASE_SECRET} {OTHER_POST_PURCHASE_SECRET}"
    server = ServerProcess(
        database_url,
        env={"HOOKLEDGER_VERIFF_SECRET": "old new", "HOOKLEDGER_POST_PURCHASE_SECRET": both},
    ).start()
    try:
        assert send_veriff(server.url, decision_body("5001"), secret="old").status_code == 200
        assert send_veriff(server.url, decision_body("5001"), secret="new").status_code == 200
        assert_error(send_veriff(server.url, decision_body("5001"), secret=VERIFF_SECRET), 401)
        for secret in (POST_PURCHASE_SECRET, OTHER_POST_PURCHASE_SECRET):
            response = send_post_purchase(server.url, order_body("5001"), secret=secret)
            assert response.status_code == 200
        assert count_events(database_url) == 4
    finally:
        server.stop()


# -- correlation and metrics ---------------------------------------------------


def _audit(server: ServerProcess, order_id: str) -> list[dict[str, object]]:
    response = httpx.get(f"{server.url}/api/v1/orders/{order_id}/events", timeout=10)
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


def test_request_id_is_echoed_and_stored_in_the_event_metadata(server: ServerProcess) -> None:
    response = send_post_purchase(
        server.url, order_body("6001"), headers={"X-Request-ID": "req-e2e-6001"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-e2e-6001"
    [event] = _audit(server, "6001")
    metadata = event["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["correlation_id"] == "req-e2e-6001"

    refused = send_veriff(server.url, b"{}", secret="wrong", headers={"X-Request-ID": "req-bad"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "req-bad"


def test_cloud_trace_id_is_the_correlation_id_without_a_request_id(server: ServerProcess) -> None:
    trace = "105445aa7843bc8bf206b120001000"
    response = send_veriff(
        server.url,
        decision_body("6002"),
        headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == trace
    [event] = _audit(server, "6002")
    metadata = event["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["correlation_id"] == trace


def _samples(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_webhooks_by_provider_and_outcome_and_append_batches(
    server: ServerProcess,
) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    raw = json.dumps(order_body("7001")).encode()
    send_post_purchase(server.url, raw, msg_id=msg_id)
    send_post_purchase(server.url, raw, msg_id=msg_id)
    send_post_purchase(server.url, order_body("7001", orderTotal=2), msg_id=msg_id)
    send_veriff(server.url, decision_body("7001"))
    send_veriff(server.url, decision_body("7001"), secret="wrong")
    httpx.post(server.url + "/api/v1/nobody/webhook", content=raw, headers=veriff_headers(raw))

    samples = _samples(server)

    def webhooks(provider: str, outcome: str) -> float:
        labels = (("outcome", outcome), ("provider", provider))
        return samples.get(("hookledger_webhooks_total", labels), 0.0)

    assert webhooks("post-purchase", "recorded") == 1
    assert webhooks("post-purchase", "duplicate") == 1
    assert webhooks("post-purchase", "conflict") == 1
    assert webhooks("veriff", "recorded") == 1
    assert webhooks("veriff", "signature_rejected") == 1
    assert webhooks("unknown", "not_found") == 1

    # Every append went through a committed batch: four appends, one at a time.
    assert samples[("hookledger_append_batch_size_count", ())] == 4
    assert samples[("hookledger_append_batch_size_sum", ())] == 4
    assert samples[("hookledger_append_batch_size_bucket", (("le", "1.0"),))] == 4
    assert samples[("hookledger_append_batch_seconds_count", ())] == 4


# -- signed bodies the providers cannot send: refused, never a server error ------


def test_signed_body_with_a_nul_in_an_id_is_refused_as_malformed(
    shared_server: ServerProcess, shared_database_url: str
) -> None:
    before = count_events(shared_database_url)
    veriff = send_veriff(shared_server.url, {"id": "abc\u0000def", "status": "approved"})
    part = send_veriff(
        shared_server.url,
        {"verification": {"id": "s-nul", "status": "approved", "code": "9\u0000"}},
    )
    order = send_post_purchase(shared_server.url, order_body("nul\u0000order"))
    for response in (veriff, part, order):
        assert_error(response, 400, "malformed_body")
    assert count_events(shared_database_url) == before


def test_signed_veriff_body_with_an_oversized_id_part_is_refused_as_malformed(
    shared_server: ServerProcess, shared_database_url: str
) -> None:
    before = count_events(shared_database_url)
    noise = os.urandom(3000).hex()
    decision = send_veriff(
        shared_server.url, {"verification": {"id": "s-big", "status": "approved", "code": noise}}
    )
    session_event = send_veriff(
        shared_server.url, {"id": "s-big", "action": "started", "attemptId": noise}
    )
    assert_error(decision, 400, "malformed_body")
    assert_error(session_event, 400, "malformed_body")
    assert count_events(shared_database_url) == before

    # The longest id the adapter does accept still fits the ledger's unique index.
    longest = {
        "verification": {
            "id": os.urandom(128).hex(),
            "status": "approved",
            "code": os.urandom(32).hex(),
            "decisionTime": os.urandom(32).hex(),
            "vendorData": os.urandom(128).hex(),
        }
    }
    assert send_veriff(shared_server.url, longest).json()["recorded"] is True
    assert count_events(shared_database_url) == before + 1


def test_signed_body_with_a_time_at_the_edge_of_the_calendar_is_refused_naming_the_field(
    shared_server: ServerProcess,
) -> None:
    for moment in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        response = send_post_purchase(shared_server.url, order_body("8001", occurredAt=moment))
        detail = assert_error(response, 400, "malformed_body")["detail"]
        assert detail.startswith("occurredAt is not a time hookledger accepts")
