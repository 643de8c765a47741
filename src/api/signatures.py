"""HMAC signature schemes, both directions: verify what providers send, sign what
``hookledger send`` posts. Every comparison is constant-time. SendGrid's ECDSA
scheme is in ``api.sendgrid_signature``."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Callable, Mapping, Sequence

from api.rejections import MALFORMED, MISMATCH, MISSING, Rejected, signed_timestamp

STANDARD_WEBHOOKS_TOLERANCE = 300
STRIPE_TOLERANCE = 300


def _first_match(expected: Sequence[bytes], presented: Sequence[bytes]) -> None:
    """Pass when any presented signature equals any expected one, else refuse."""
    for want in expected:
        # No early exit on a match inside a secret's candidates: a constant-time
        # comparison per pair is enough, the count of pairs is not secret.
        if any(hmac.compare_digest(want, candidate) for candidate in presented):
            return
    raise Rejected(MISMATCH, "signature does not match")


# --- Veriff: lowercase hex HMAC-SHA256 of the raw body ------------------------------


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """Veriff's scheme: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.digest(secret.encode(), body, "sha256").hex()


def _verify_body_signature(
    sign: Callable[[str, bytes], str],
    secrets: Sequence[str],
    body: bytes,
    signature: str | None,
    header: str,
) -> None:
    """Accept ``signature`` if it is ``sign(secret, body)`` for any secret. Compared
    as text, so a second spelling of the same bytes (base64 with stray bits in its
    last character) is refused, not decoded alike."""
    if not signature:
        raise Rejected(MISSING, f"missing {header} header")
    _first_match([sign(secret, body).encode() for secret in secrets], [signature.strip().encode()])


def verify_hex_hmac(
    secrets: Sequence[str], body: bytes, signature: str | None, header: str = "signature"
) -> None:
    """Accept ``signature`` if it is the hex HMAC of ``body`` under any secret;
    ``header`` names where it was looked for, for the refusal."""
    _verify_body_signature(hmac_sha256_hex, secrets, body, signature, header)


# --- Shopify: base64 HMAC-SHA256 of the raw body ------------------------------------


def shopify_sign(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value: base64 HMAC-SHA256 of the body, keyed
    by the app's client secret (or the shop's webhook signing key) as text."""
    digest = hmac.digest(secret.encode(), body, "sha256")
    return base64.b64encode(digest).decode()


def verify_shopify(secrets: Sequence[str], body: bytes, signature: str | None) -> None:
    """Accept ``signature`` if it is Shopify's signature of ``body`` under any secret."""
    _verify_body_signature(shopify_sign, secrets, body, signature, "X-Shopify-Hmac-Sha256")


# --- Authorize.net: "sha512=" + hex HMAC-SHA512 of the raw body ---------------------


def authorizenet_sign(signature_key: str, body: bytes) -> str:
    """The ``X-ANET-Signature`` value: ``sha512=`` and the uppercase hex HMAC-SHA512
    of the body. The HMAC key is the Signature Key's text as Authorize.net shows
    it (128 hex characters), not the bytes those characters spell: a signature
    Authorize.net's sandbox made verifies only that way (see the tests)."""
    digest = hmac.digest(signature_key.encode(), body, "sha512").hex()
    return "sha512=" + digest.upper()


def verify_authorizenet(secrets: Sequence[str], body: bytes, signature: str | None) -> None:
    """Accept ``sha512=<hex>`` (compared case-insensitively) under any Signature Key."""
    if not signature:
        raise Rejected(MISSING, "missing X-ANET-Signature header")
    scheme, _, digest = signature.strip().partition("=")
    if scheme.lower() != "sha512" or not digest:
        raise Rejected(MALFORMED, "X-ANET-Signature must be sha512=<hex>")
    expected = [authorizenet_sign(key, body)[7:].encode() for key in secrets]
    _first_match(expected, [digest.upper().encode()])


# --- Stripe: "t=<time>,v1=<hex>" over "<time>.<body>" -------------------------------


def stripe_sign(secret: str, timestamp: int, body: bytes) -> str:
    """A ``Stripe-Signature`` value with one ``v1`` signature. The HMAC key is the
    whole ``whsec_...`` secret as text (Stripe does not decode it)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.digest(secret.encode(), signed, "sha256").hex()
    return f"t={timestamp},v1={digest}"


def verify_stripe(
    secrets: Sequence[str],
    header: str | None,
    body: bytes,
    now: float,
    tolerance: int = STRIPE_TOLERANCE,
) -> None:
    """Check ``Stripe-Signature``: its ``t`` within ``tolerance`` of now, and one of
    its ``v1`` entries (there are several while Stripe rolls a secret) matching."""
    if not header:
        raise Rejected(MISSING, "missing Stripe-Signature header")
    stamps: list[str] = []
    presented: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            presented.append(value.encode())
    if len(stamps) != 1 or not presented:
        raise Rejected(MALFORMED, "Stripe-Signature needs one t= and at least one v1=")
    timestamp = signed_timestamp(stamps[0], now, tolerance, "Stripe-Signature t")
    expected = [stripe_sign(secret, timestamp, body).rpartition("=")[2].encode()
                for secret in secrets]  # fmt: skip
    _first_match(expected, presented)


# --- Standard Webhooks ----------------------------------------------------------------


@functools.lru_cache(maxsize=16)  # a few live secrets, each decoded once, not per delivery
def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64)."""
    encoded = secret.removeprefix("whsec_")
    # Some senders drop the base64 padding; the reference library tolerates that too.
    encoded += "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Standard Webhooks secret must be whsec_ followed by base64") from exc


def standard_webhooks_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(standard_webhooks_key(secret), signed, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhooks(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: int = STANDARD_WEBHOOKS_TOLERANCE,
) -> None:
    """Check ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

    The signature header may hold several space-separated ``v1,<base64>``
    entries; one matching entry under any secret is enough.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not msg_id or not stamp or not signature:
        raise Rejected(MISSING, "missing webhook-id, webhook-timestamp or webhook-signature header")
    timestamp = signed_timestamp(stamp, now, tolerance, "webhook-timestamp")
    presented = [
        entry.partition(",")[2].encode() for entry in signature.split() if entry.startswith("v1,")
    ]
    expected = [
        standard_webhooks_sign(secret, msg_id, timestamp, body)[3:].encode() for secret in secrets
    ]
    _first_match(expected, presented)
