"""Shopify: base64 HMAC-SHA256 of the body in ``X-Shopify-Hmac-Sha256``.

Event id: ``X-Shopify-Event-Id`` (the same for every delivery of one event, which
Shopify documents as the key for duplicates), else ``X-Shopify-Webhook-Id``.
Type: ``orders/create``, ``orders/cancelled`` and ``orders/paid`` are the same
order events the shop's order source sends (``order.created`` ...); any other
topic ``t/u`` becomes ``shopify.t.u``. Order: the order's ``id`` for ``orders/*``
topics (Shopify's stable order id; ``name`` and ``order_number`` are display
numbers), and ``order_id`` where another topic's body has one (refunds,
transactions, fulfillments). Only the body is signed: the headers are not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    event_name,
    identifier,
    json_object,
    optional_order_identifier,
    order_identifier,
    parse_time,
    stream_for,
)
from api.rejections import MalformedBody
from api.signatures import shopify_sign, verify_shopify

ORDER_TOPICS = {
    "orders/create": "order.created",
    "orders/cancelled": "order.cancelled",
    "orders/paid": "order.paid",
}


class Shopify(Adapter):
    name = "shopify"
    scheme = "shopify-hmac-sha256"
    signature_headers = (
        "x-shopify-hmac-sha256",
        "x-shopify-topic",
        "x-shopify-event-id",
        "x-shopify-webhook-id",
        "x-shopify-shop-domain",
        "x-shopify-triggered-at",
    )
    secrets_field = "shopify_secret"

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-shopify-hmac-sha256": shopify_sign(key, body),
            "x-shopify-topic": topic,
            "x-shopify-event-id": str(uuid.uuid4()),
            "x-shopify-webhook-id": str(uuid.uuid4()),
        }

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_shopify(self.secrets, body, headers.get("x-shopify-hmac-sha256"))

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        body = json_object(payload)
        topic = headers.get("x-shopify-topic", "")
        if not topic:
            raise MalformedBody("missing X-Shopify-Topic header")
        event_id = identifier(
            headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id"),
            "X-Shopify-Event-Id",
        )
        order: str | None
        if topic.startswith("orders/"):
            order = order_identifier(body.get("id"), "id")
        else:
            order = optional_order_identifier(body.get("order_id"), "order_id")
        kind = ORDER_TOPICS.get(topic) or event_name(
            "shopify." + topic.replace("/", "."), "X-Shopify-Topic"
        )
        # Each is checked, not only the first found: the folds read created_at.
        times = (
            parse_time(headers.get("x-shopify-triggered-at"), "X-Shopify-Triggered-At"),
            parse_time(body.get("updated_at"), "updated_at"),
            parse_time(body.get("created_at"), "created_at"),
        )
        occurred = next((t for t in times if t is not None), None)
        return [
            Normalised(
                event_id=event_id,
                type=kind,
                order_id=order,
                stream=stream_for(order, f"shopify-{event_id}"),
                occurred_at=occurred,
                payload=body,
            )
        ]
