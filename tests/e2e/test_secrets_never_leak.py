"""No secret value ever shows: a server holding every kind of secret (plain,
``file:``, Secret Manager through the local stand-in) takes good deliveries, bad
signatures, wrong tokens, task calls, failing outbound actions and a failing
Cloud Tasks endpoint; then every log line, answer body and header, /metrics,
/__selftest and the CLI's self-test are searched for every secret."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from hookledger.samples import sample_body
from tests.countdown_helpers import WINDOW_ENV, countdown_state, now_order
from tests.e2e_helpers import run_cli, wait_for
from tests.secret_manager_standin import SecretManagerStandIn
from tests.support import (
    AUTHORIZENET_SECRET,
    POST_PURCHASE_SECRET,
    SHOPIFY_SECRET,
    SOURCE,
    SOURCE_SECRET,
    STRIPE_SECRET,
    VERIFF_SECRET,
    ServerProcess,
    free_port,
    signed,
)

API_TOKEN = "api-token-4c1d-leak-check"
TASK_SECRET = "task-secret-9b2e-leak-check"
SENDGRID_API_KEY = "SG.sendgrid-key-77aa-leak-check"
ANET_TRANSACTION_KEY = "anet-key-51fe-leak-check"


def deliveries(order: str) -> dict[str, bytes]:
    return {
        "post-purchase": json.dumps(now_order(order)).encode(),
        "veriff": json.dumps({"id": f"s-{order}", "status": "started", "event": "x"}).encode(),
        "shopify": sample_body("shopify", "orders/create", order),
        "stripe": sample_body("stripe", "payment_intent.succeeded", order),
        "authorizenet": sample_body("authorizenet", "payment.captured", order),
        "sendgrid": sample_body("sendgrid", "email.delivered", order),
        SOURCE: json.dumps({"type": "return.requested", "data": {"order_id": order}}).encode(),
    }


def test_no_secret_appears_in_logs_answers_metrics_or_the_self_test(
    database_url: str, tmp_path: Path
) -> None:
    standin = SecretManagerStandIn().start()
    standin.put("test-project", "stripe-webhook", STRIPE_SECRET)
    token_file = tmp_path / "api-token"
    token_file.write_text(API_TOKEN)
    closed = f"http://127.0.0.1:{free_port()}"  # every outbound call fails
    env = {
        **WINDOW_ENV,
        "HOOKLEDGER_STRIPE_SECRET": "sm://test-project/stripe-webhook",
        "HOOKLEDGER_SECRETS_ENDPOINT": standin.url,
        "HOOKLEDGER_SECRETS_REFRESH": "1s",
        "HOOKLEDGER_API_TOKEN": f"file:{token_file}",
        "HOOKLEDGER_SAFE_MODE": "false",
        "HOOKLEDGER_SENDGRID_API_KEY": SENDGRID_API_KEY,
        "HOOKLEDGER_SENDGRID_BASE_URL": closed,
        "HOOKLEDGER_AUTHORIZENET_LOGIN_ID": "login-id",
        "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY": ANET_TRANSACTION_KEY,
        "HOOKLEDGER_PAYMENTS_BASE_URL": closed,
        "HOOKLEDGER_ACTION_MAX_ATTEMPTS": "2",
        "HOOKLEDGER_ACTION_BACKOFF_SECONDS": "0.2",
        "HOOKLEDGER_TIMER_BACKEND": "cloudtasks",
        "HOOKLEDGER_TASKS_QUEUE": "projects/p/locations/l/queues/q",
        "HOOKLEDGER_TASKS_ENDPOINT": f"127.0.0.1:{free_port()}",  # nothing listens
        "HOOKLEDGER_TASKS_SECRET": TASK_SECRET,
        "HOOKLEDGER_TASKS_RECONCILE_LAG": "1s",
    }
    server = ServerProcess(database_url, env=env)
    server.env["HOOKLEDGER_TASKS_TARGET_URL"] = server.url
    server.start()
    seen: list[str] = []
    operator = {"authorization": f"Bearer {API_TOKEN}"}

    def keep(answer: httpx.Response) -> httpx.Response:
        seen.append(answer.text)
        seen.extend(f"{k}: {v}" for k, v in answer.headers.items())
        return answer

    try:
        order = f"leak-{uuid.uuid4().hex[:8]}"
        for provider, body in deliveries(order).items():
            url = f"{server.url}/api/v1/{provider}/webhook"
            good = keep(httpx.post(url, content=body, headers=signed(provider, body), timeout=10))
            assert good.status_code == 200, (provider, good.text)
            tampered = body.replace(order.encode(), b"someone-else")
            bad = keep(httpx.post(url, content=tampered, headers=signed(provider, body)))
            assert bad.status_code == 401
            keep(
                httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
            )
        for headers in ({}, {"authorization": "Bearer wrong"}, operator):
            keep(httpx.get(f"{server.url}/api/v1/orders/{order}", headers=headers))
            keep(httpx.get(f"{server.url}/api/v1/orders/{order}/events", headers=headers))
        task = json.dumps({"order_id": order, "timer": "expire",
                           "due_at": "2020-01-01T00:00:00Z"}).encode()  # fmt: skip
        for headers in ({}, {"x-hookledger-task-secret": "guess"},
                        {"x-hookledger-task-secret": TASK_SECRET},
                        {"authorization": "Bearer not.a.token"}):  # fmt: skip
            keep(httpx.post(f"{server.url}/internal/tasks/countdown", content=task,
                            headers=headers))  # fmt: skip
        # The countdown expires through the reconciler (no Cloud Tasks answers);
        # its refund and email fail against the closed port and are retried.
        assert wait_for(lambda: countdown_state(database_url, order) == "expired", 20)
        assert wait_for(lambda: "action dead-lettered" in server.output(), 15)
        keep(httpx.get(f"{server.url}/metrics"))
        keep(httpx.get(f"{server.url}/__selftest", headers=operator))
        keep(httpx.get(f"{server.url}/__selftest"))
        keep(httpx.get(f"{server.url}/healthz"))
        keep(httpx.get(f"{server.url}/health"))
        cli = run_cli(
            database_url,
            "selftest",
            env={**env, "HOOKLEDGER_TASKS_TARGET_URL": "https://x.invalid"},
        )
        seen.extend([cli.stdout, cli.stderr])
    finally:
        server.stop()
        standin.stop()
    output = server.output()
    for failing_path in ("task not created", "action failed, will retry", "request refused"):
        assert failing_path in output  # the paths that could leak did run
    everything = "\n".join([output, *seen])
    secrets = {
        "veriff": VERIFF_SECRET,
        "post-purchase": POST_PURCHASE_SECRET,
        "shopify": SHOPIFY_SECRET,
        "stripe (Secret Manager)": STRIPE_SECRET,
        "authorizenet": AUTHORIZENET_SECRET,
        "source": SOURCE_SECRET,
        "api token (file)": API_TOKEN,
        "task secret": TASK_SECRET,
        "sendgrid api key": SENDGRID_API_KEY,
        "authorize.net transaction key": ANET_TRANSACTION_KEY,
    }
    leaked = [name for name, value in secrets.items() if value in everything]
    assert leaked == []
