"""Built-in sample bodies for ``hookledger send``, the way ``stripe trigger`` has them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


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


SAMPLES: dict[str, dict[str, Callable[[str], dict[str, Any]]]] = {
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
}


def sample_body(provider: str, name: str, order_id: str) -> bytes:
    """The sample's JSON bytes for ``order_id``; KeyError if there is no such sample."""
    return json.dumps(SAMPLES[provider][name](order_id)).encode()
