"""Signature schemes, both directions: verify what providers send, sign what
``hookledger send`` posts. Every comparison is constant-time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from events.errors import SignatureRejected

STANDARD_WEBHOOKS_TOLERANCE = 300


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """Veriff's scheme: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hex_hmac(secrets: Sequence[str], body: bytes, signature: str | None) -> None:
    """Accept ``signature`` if it is the hex HMAC of ``body`` under any secret."""
    if not signature:
        raise SignatureRejected("missing signature header")
    presented = signature.strip().encode()
    for secret in secrets:
        if hmac.compare_digest(hmac_sha256_hex(secret, body).encode(), presented):
            return
    raise SignatureRejected("signature does not match")


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
    digest = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
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
        raise SignatureRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise SignatureRejected("webhook-timestamp is not an integer") from exc
    if abs(now - timestamp) > tolerance:
        raise SignatureRejected(f"webhook-timestamp is more than {tolerance} s away from now")
    presented = [
        entry.partition(",")[2].encode() for entry in signature.split() if entry.startswith("v1,")
    ]
    for secret in secrets:
        expected = standard_webhooks_sign(secret, msg_id, timestamp, body)[3:].encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return
    raise SignatureRejected("signature does not match")
