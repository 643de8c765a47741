"""Built-in sample bodies for ``hookledger send``, the way ``stripe trigger`` has them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Builder = Callable[[str], Any]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _order(event: str) -> Callable[[str], dict[str, Any]]:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "event": event,
            "orderId": order_id,
            "customerEmail": "customer@example.com",
            "orderTotal": 59.9,
            "currency": "EUR",
            "createdAt": _now(),
        }

    return build


def _decision(status: str, code: int) -> Callable[[str], dict[str, Any]]:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "status": "success",
            "verification": {
                "id": f"session-{order_id}",
                "attemptId": f"attempt-{order_id}",
                "code": code,
                "status": status,
                "vendorData": order_id,
                "decisionTime": _now(),
                "person": {
                    "firstName": "SAMPLE",
                    "lastName": "PERSON",
                    "dateOfBirth": "1990-01-01",
                },
            },
        }

    return build


def _session_event(action: str) -> Callable[[str], dict[str, Any]]:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "id": f"session-{order_id}",
            "attemptId": f"attempt-{order_id}",
            "feature": "selfid",
            "code": 7001 if action == "started" else 7002,
            "action": action,
            "vendorData": order_id,
        }

    return build


def _shopify_order(status: str | None) -> Builder:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "id": int(order_id) if order_id.isdigit() else order_id,
            "name": f"#{order_id}",
            "email": "customer@example.com",
            "created_at": _now(),
            "updated_at": _now(),
            "cancelled_at": _now() if status == "cancelled" else None,
            "financial_status": "paid" if status == "paid" else "pending",
            "currency": "EUR",
            "total_price": "59.90",
        }

    return build


def _stripe(kind: str, obj: str) -> Builder:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"{obj}_{order_id}",
                    "object": "payment_intent" if obj == "pi" else "charge",
                    "amount": 5990,
                    "currency": "eur",
                    "metadata": {"order_id": order_id},
                    **({"refunded": True, "amount_refunded": 5990} if "refund" in kind else {}),
                }
            },
        }

    return build


def _authorizenet(event_type: str) -> Builder:
    def build(order_id: str) -> dict[str, Any]:
        return {
            "notificationId": str(uuid.uuid4()),
            "eventType": event_type,
            "eventDate": _now(),
            "webhookId": "00000000-0000-0000-0000-000000000000",
            "payload": {
                "responseCode": 1,
                "authCode": "LZ6I19",
                "avsResponse": "Y",
                "authAmount": 59.90,
                "invoiceNumber": order_id,
                "entityName": "transaction",
                "id": f"6{uuid.uuid4().int % 10**10:010d}",
            },
        }

    return build


def _sendgrid(*events: str) -> Builder:
    def build(order_id: str) -> list[dict[str, Any]]:
        message = uuid.uuid4().hex[:22]
        return [
            {
                "email": "customer@example.com",
                "timestamp": int(time.time()),
                "event": event,
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{message}.filter0001.1.0",
                "order_id": order_id,
                "hookledger_action": f"email.reminder:{order_id}",
            }
            for event in events
        ]

    return build


SAMPLES: dict[str, dict[str, Builder]] = {
    "post-purchase": {
        "order.created": _order("order.created"),
        "order.cancelled": _order("order.cancelled"),
        "order.paid": _order("order.paid"),
    },
    "veriff": {
        "verification.approved": _decision("approved", 9001),
        "verification.declined": _decision("declined", 9102),
        "verification.resubmission_requested": _decision("resubmission_requested", 9103),
        "verification.started": _session_event("started"),
        "verification.submitted": _session_event("submitted"),
    },
    # Shopify's samples are named after their topic (the X-Shopify-Topic header).
    "shopify": {
        "orders/create": _shopify_order(None),
        "orders/paid": _shopify_order("paid"),
        "orders/cancelled": _shopify_order("cancelled"),
    },
    "stripe": {
        "payment_intent.succeeded": _stripe("payment_intent.succeeded", "pi"),
        "charge.refunded": _stripe("charge.refunded", "ch"),
    },
    "authorizenet": {
        "payment.captured": _authorizenet("net.authorize.payment.authcapture.created"),
        "payment.refunded": _authorizenet("net.authorize.payment.refund.created"),
        "payment.voided": _authorizenet("net.authorize.payment.void.created"),
    },
    "sendgrid": {
        "email.delivered": _sendgrid("processed", "delivered"),
        "email.bounce": _sendgrid("processed", "bounce"),
        "email.open": _sendgrid("open"),
    },
}


def sample_body(provider: str, name: str, order_id: str) -> bytes:
    """The sample's JSON bytes for ``order_id``; KeyError if there is no such sample."""
    return json.dumps(SAMPLES[provider][name](order_id)).encode()
