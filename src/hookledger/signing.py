"""The headers ``hookledger send`` signs a body with, the way each provider does."""

from __future__ import annotations

import time
import uuid

from api.sendgrid_signature import sendgrid_sign
from api.signatures import (
    authorizenet_sign,
    hmac_sha256_hex,
    shopify_sign,
    standard_webhooks_sign,
    stripe_sign,
)


class CannotSign(Exception):
    """This installation holds no key that can sign for the provider."""


def signed_headers(
    provider: str, secret: str, body: bytes, *, topic: str, sendgrid_signing_key: str | None
) -> dict[str, str]:
    """Content type and signature headers for one delivery of ``body``.

    ``secret`` is the provider's first active secret; a configured Standard
    Webhooks source signs like post-purchase. SendGrid signs with a private key
    hookledger never has, except the local key pair of an embedded installation.
    """
    now = int(time.time())
    headers = {"content-type": "application/json"}
    if provider == "veriff":
        headers["x-hmac-signature"] = hmac_sha256_hex(secret, body)
    elif provider == "shopify":
        headers.update({
            "x-shopify-hmac-sha256": shopify_sign(secret, body),
            "x-shopify-topic": topic,
            "x-shopify-event-id": str(uuid.uuid4()),
            "x-shopify-webhook-id": str(uuid.uuid4()),
        })  # fmt: skip
    elif provider == "stripe":
        headers["stripe-signature"] = stripe_sign(secret, now, body)
    elif provider == "authorizenet":
        headers["x-anet-signature"] = authorizenet_sign(secret, body)
    elif provider == "sendgrid":
        if sendgrid_signing_key is None:
            raise CannotSign(
                "SendGrid signs its deliveries with a private key that hookledger does not "
                "have (HOOKLEDGER_SENDGRID_PUBLIC_KEY is the public half), so `send sendgrid` "
                "works only on an embedded installation with its generated local key; use "
                "SendGrid's 'Test Your Integration' to send a real signed delivery"
            )
        headers.update(sendgrid_sign(sendgrid_signing_key, now, body))
    else:
        msg_id = f"msg_{uuid.uuid4().hex}"
        headers.update({
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": standard_webhooks_sign(secret, msg_id, now, body),
        })  # fmt: skip
    return headers
