"""SendGrid's signed Event Webhook: ECDSA P-256 with SHA-256 over the timestamp
header's text followed by the raw body; the signature is base64 DER.

SendGrid keeps the private key; hookledger is configured with the public
"verification key" SendGrid shows (base64 DER, SubjectPublicKeyInfo). Only a
local installation, which makes its own key pair, can sign (``hookledger send``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.rejections import MALFORMED, MISMATCH, MISSING, Rejected, signed_timestamp

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
# SendGrid documents no window. Its retries are new, freshly signed requests,
# so the window of the other signed timestamps (Stripe, Standard Webhooks) fits.
SENDGRID_TOLERANCE = 300

_ALGORITHM = ec.ECDSA(hashes.SHA256())


def _strict_base64(text: str) -> bytes:
    """Base64 that has exactly one spelling: re-encoding gives the same text back."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise ValueError("not canonical base64")
    return raw


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A verification key: base64 DER of a P-256 public key; ValueError otherwise."""
    try:
        key = serialization.load_der_public_key(_strict_base64(text.strip()))
    except ValueError as exc:
        raise ValueError(
            "a SendGrid verification key must be the base64 DER public key SendGrid shows"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("a SendGrid verification key must be an ECDSA P-256 public key")
    return key


def verify_sendgrid(
    keys: Sequence[ec.EllipticCurvePublicKey],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: int = SENDGRID_TOLERANCE,
) -> None:
    """Accept a delivery signed by any of ``keys`` within ``tolerance`` of now."""
    signature = headers.get(SIGNATURE_HEADER)
    stamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise Rejected(MISSING, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    signed_timestamp(stamp, now, tolerance, TIMESTAMP_HEADER)
    try:
        der = _strict_base64(signature.strip())
    except ValueError:
        raise Rejected(MALFORMED, f"{SIGNATURE_HEADER} is not base64") from None
    message = stamp.encode() + body
    for key in keys:
        try:
            key.verify(der, message, _ALGORITHM)
        except InvalidSignature:
            continue
        return
    raise Rejected(MISMATCH, "signature does not match")


def sendgrid_sign(private_key: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two signature headers for ``body``, signed with a local private key
    (base64 DER, PKCS#8): for local testing only, SendGrid signs real deliveries."""
    key = serialization.load_der_private_key(base64.b64decode(private_key), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the local SendGrid signing key is not an ECDSA key")
    stamp = str(timestamp)
    signature = key.sign(stamp.encode() + body, _ALGORITHM)
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: stamp,
    }


def new_key_pair() -> tuple[str, str]:
    """A local P-256 key pair: (private key base64 DER PKCS#8, public key base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(private_der).decode(), base64.b64encode(public_der).decode()
