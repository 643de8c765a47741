"""Stripe: ``Stripe-Signature: t=<time>,v1=<hex>[,v1=...]`` over ``<time>.<body>``.

Event id and type: the event's ``id`` and ``type`` as Stripe names them. Order:
``data.object.metadata.order_id`` when the shop set it; otherwise the event gets
the stream of the object it is about (``stripe-<data.object.id>``).
"""

from __future__ import annotations

import secrets as random
from collections.abc import Mapping
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    check_order_time,
    event_name,
    identifier,
    json_object,
    lookup,
    optional_identifier,
    optional_order_identifier,
    parse_time,
    stream_for,
)
from api.signatures import stripe_sign, verify_stripe


class Stripe(Adapter):
    name = "stripe"
    scheme = "stripe-v1"
    signature_headers = ("stripe-signature",)
    secrets_field = "stripe_secret"

    @classmethod
    def local_secret(cls) -> dict[str, str]:
        return {cls.name: "whsec_" + random.token_hex(24)}

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return {"content-type": "application/json", "stripe-signature": stripe_sign(key, now, body)}

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_stripe(self.secrets, headers.get("stripe-signature"), body, now)

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        body = json_object(payload)
        event_id = identifier(body.get("id"), "id")
        kind = event_name(body.get("type"), "type")
        check_order_time(kind, body)
        order = optional_order_identifier(
            lookup(body, "data.object.metadata.order_id"), "data.object.metadata.order_id"
        )
        subject = optional_identifier(lookup(body, "data.object.id"), "data.object.id")
        return [
            Normalised(
                event_id=event_id,
                type=kind,
                order_id=order,
                stream=stream_for(order, f"stripe-{subject or event_id}"),
                occurred_at=parse_time(body.get("created"), "created"),
                payload=body,
            )
        ]
