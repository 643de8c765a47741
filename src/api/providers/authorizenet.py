"""Authorize.net: ``X-ANET-Signature: sha512=<hex>``, HMAC-SHA512 of the body.

Event id: ``notificationId``. Types: payment events of the order --
``net.authorize.payment.refund.created`` is ``payment.refunded``, ``void``
``payment.voided``, ``capture``/``priorAuthCapture``/``authcapture`` (authorised
and captured at once) ``payment.captured``, ``authorization`` ``payment.authorized``;
any other ``net.authorize.payment.X`` is ``payment.X`` (``payment.fraud.held``),
and any other ``net.authorize.Y`` is ``authorizenet.Y``. Order: the
transaction's ``invoiceNumber`` (hookledger's refunds and the shop's charges set
it to the order id); without one, the events of a transaction share the stream
``authorizenet-<transaction id>``.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Mapping
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    event_name,
    identifier,
    json_object,
    lookup,
    optional_identifier,
    optional_order_identifier,
    parse_time,
    stream_for,
)
from api.signatures import authorizenet_sign, verify_authorizenet

PAYMENT = "net.authorize.payment."
PAYMENT_TYPES = {
    "refund.created": "payment.refunded",
    "void.created": "payment.voided",
    "capture.created": "payment.captured",
    "priorAuthCapture.created": "payment.captured",
    "authcapture.created": "payment.captured",
    "authorization.created": "payment.authorized",
}


def event_type(anet_type: str) -> str:
    """hookledger's type for an Authorize.net ``eventType``."""
    if anet_type.startswith(PAYMENT):
        rest = anet_type.removeprefix(PAYMENT)
        return PAYMENT_TYPES.get(rest) or event_name(f"payment.{rest}", "eventType")
    return event_name("authorizenet." + anet_type.removeprefix("net.authorize."), "eventType")


class AuthorizeNet(Adapter):
    name = "authorizenet"
    scheme = "anet-hmac-sha512"
    signature_headers = ("x-anet-signature",)
    secrets_field = "authorizenet_secret"

    @classmethod
    def local_secret(cls) -> dict[str, str]:
        # Authorize.net's Signature Keys are 128 uppercase hex characters.
        return {cls.name: random.token_hex(64).upper()}

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-anet-signature": authorizenet_sign(key, body),
        }

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_authorizenet(self.secrets, body, headers.get("x-anet-signature"))

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        body = json_object(payload)
        event_id = identifier(body.get("notificationId"), "notificationId")
        anet_type = event_name(body.get("eventType"), "eventType")
        invoice = lookup(body, "payload.invoiceNumber")
        if invoice is None:
            invoice = lookup(body, "payload.order.invoiceNumber")
        order = optional_order_identifier(invoice, "payload.invoiceNumber")
        transaction = optional_identifier(lookup(body, "payload.id"), "payload.id")
        return [
            Normalised(
                event_id=event_id,
                type=event_type(anet_type),
                order_id=order,
                stream=stream_for(order, f"authorizenet-{transaction or event_id}"),
                occurred_at=parse_time(body.get("eventDate"), "eventDate"),
                payload=body,
            )
        ]
