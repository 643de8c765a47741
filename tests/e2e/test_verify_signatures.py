"""`hookledger verify --signatures`: every stored delivery checked again with the
secrets configured now. Real deliveries of every provider verify (SendGrid's
batch elements through their delivery), a delivery forged into the ledger by
someone without the secrets fails, a provider without a secret now is
unverifiable rather than failed, and a rotated secret list still verifies."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from events.appender import write
from events.connector import Database
from events.model import NewEvent
from hookledger.signature_audit import audit_signatures
from tests.e2e.test_e2e_providers import NEW_PROVIDERS, delivery, path
from tests.e2e_helpers import decision_body, order_body, run_cli, send_post_purchase, send_veriff
from tests.support import (
    AUTHORIZENET_SECRET,
    SENDGRID_PUBLIC_KEY,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    ServerProcess,
    provider_adapters,
    providers_file,
    signed,
)

SECRETS = {
    "HOOKLEDGER_SHOPIFY_SECRET": SHOPIFY_SECRET,
    "HOOKLEDGER_STRIPE_SECRET": STRIPE_SECRET,
    "HOOKLEDGER_AUTHORIZENET_SECRET": AUTHORIZENET_SECRET,
    "HOOKLEDGER_SENDGRID_PUBLIC_KEY": SENDGRID_PUBLIC_KEY,
    "HOOKLEDGER_PROVIDERS_FILE": str(providers_file()),
}


def record_every_provider(server: ServerProcess) -> None:
    send_post_purchase(server.url, order_body("s1"))
    send_veriff(server.url, decision_body("s1", "approved"))
    for provider in NEW_PROVIDERS:
        body, _ = delivery(provider, "s1")
        answer = httpx.post(server.url + path(provider), content=body,
                            headers=signed(provider, body), timeout=10)  # fmt: skip
        assert answer.status_code == 200, (provider, answer.text)


def verify_signatures(database_url: str, **env: str) -> tuple[int, str]:
    done = run_cli(database_url, "verify", "--stream", "order-s1", "--signatures",
                   env={**SECRETS, **env})  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_every_providers_deliveries_verify_and_a_forged_one_fails(
    server: ServerProcess, database_url: str
) -> None:
    record_every_provider(server)
    code, output = verify_signatures(database_url)
    assert code == 0, output
    # post-purchase, veriff, shopify, stripe, authorizenet, the source, and
    # SendGrid's delivery with its two elements.
    assert "signatures: 9 verify, 0 fail" in output

    async def forge() -> None:
        db = Database(database_url)
        await db.open()
        raw = b'{"id":"evt_forged","type":"charge.refunded"}'
        await write(db, [NewEvent(
            provider="stripe", event_id="evt_forged", stream="order-s1", type="charge.refunded",
            payload_json=raw, raw=raw,
            metadata={"scheme": "stripe-v1",
                      "headers": {"stripe-signature": f"t={int(time.time())},v1={'0' * 64}"}},
        )])  # fmt: skip
        await db.close()

    asyncio.run(forge())
    code, output = verify_signatures(database_url)
    assert code == 1
    assert "BROKEN: stream order-s1 at version" in output and "(position" in output
    assert "signatures: 9 verify, 1 fail" in output


def test_deliveries_with_an_erased_personal_value_are_not_checkable_not_failed(
    server: ServerProcess, database_url: str
) -> None:
    # Every provider's delivery carries personal values (cut out, held apart):
    # while they are held, joined back, they verify; once erased, they cannot.
    record_every_provider(server)
    assert run_cli(database_url, "erase", "--order", "s1").returncode == 0
    code, output = verify_signatures(database_url)
    assert code == 0, output
    erased = int(output.split(" not checkable")[0].rsplit(", ", 1)[-1])
    verified = int(output.split("signatures: ")[1].split(" verify")[0])
    assert erased >= 2 and verified + erased == 9 and " 0 fail" in output, output


def test_a_provider_without_a_secret_now_is_unverifiable_not_failed(
    server: ServerProcess, database_url: str
) -> None:
    record_every_provider(server)
    code, output = verify_signatures(database_url, HOOKLEDGER_STRIPE_SECRET="")
    assert code == 0, output
    assert "8 verify, 0 fail, 1 unverifiable (no secret for: stripe)" in output


def test_a_rotated_secret_list_still_verifies_old_deliveries(
    server: ServerProcess, database_url: str
) -> None:
    record_every_provider(server)
    code, output = verify_signatures(
        database_url, HOOKLEDGER_STRIPE_SECRET=f"whsec_the_new_one,{STRIPE_SECRET}"
    )
    assert code == 0 and "9 verify, 0 fail" in output, output


async def test_old_deliveries_verify_whatever_the_clock_says(
    server: ServerProcess, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(record_every_provider, server)
    # A day later, every timestamped scheme (Stripe, Standard Webhooks, SendGrid)
    # is far outside its freshness window: the check uses the time each was recorded.
    later = time.time() + 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    report = await audit_signatures(db, provider_adapters())
    assert (report.verified, report.failed) == (9, [])
