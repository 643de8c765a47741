"""The shop's order source, signed with Standard Webhooks; event id = ``webhook-id``."""

from __future__ import annotations

import base64
import secrets as random
from collections.abc import Mapping, Sequence
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    SecretValues,
    event_name,
    identifier,
    json_object,
    order_identifier,
    parse_time,
    stream_for,
)
from api.providers.standard import standard_webhooks_headers
from api.signatures import standard_webhooks_key, verify_standard_webhooks


class PostPurchase(Adapter):
    name = "post-purchase"
    scheme = "standard-webhooks"
    signature_headers = ("webhook-id", "webhook-timestamp", "webhook-signature")
    secrets_field = "post_purchase_secret"

    def __init__(self, secrets: Sequence[str] | SecretValues, secret_setting: str) -> None:
        super().__init__(secrets, secret_setting)
        for secret in self.secrets:
            standard_webhooks_key(secret)  # ValueError: the start fails

    @classmethod
    def local_secret(cls) -> dict[str, str]:
        return {cls.name: "whsec_" + base64.b64encode(random.token_bytes(24)).decode()}

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return standard_webhooks_headers(key, body, now)

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_standard_webhooks(self.secrets, headers, body, now)

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        body = json_object(payload)
        kind = event_name(body.get("event"), "event")
        order = order_identifier(body.get("orderId"), "orderId")
        # Both are read (and checked) before either is chosen: the folds read createdAt.
        occurred_at = parse_time(body.get("occurredAt"), "occurredAt")
        created_at = parse_time(body.get("createdAt"), "createdAt")
        occurred = (
            occurred_at
            or created_at
            or parse_time(int(headers["webhook-timestamp"]), "webhook-timestamp")
        )
        return [
            Normalised(
                event_id=identifier(headers.get("webhook-id"), "webhook-id"),
                type=kind,
                order_id=order,
                stream=stream_for(order, ""),
                occurred_at=occurred,
                payload=body,
            )
        ]
