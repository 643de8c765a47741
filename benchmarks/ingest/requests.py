"""Unique signed deliveries for wrk to replay, written to files beforehand.

Signing in Python before the run leaves wrk almost no work: it shares two cores
with the server and Postgres.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from api.signatures import hmac_sha256_hex, standard_webhooks_sign

VERIFF_SECRET = "bench-veriff-secret"
# whsec_ + base64("bench-post-purchase-secret")
POST_PURCHASE_SECRET = "whsec_YmVuY2gtcG9zdC1wdXJjaGFzZS1zZWNyZXQ="

BODY_BYTES = 1024
MIN_REQUESTS = 300_000
# Comfortably above what two shared cores can ingest, so no request repeats.
REQUESTS_PER_SECOND_BUDGET = 25_000
STANDARD_WEBHOOKS_TOLERANCE = 300  # seconds; the server refuses older timestamps


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _padded(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, grown to about BODY_BYTES with a filler field."""
    encoded = msgspec.json.encode(body)
    missing = BODY_BYTES - len(encoded) - len(b',"note":""')
    if missing <= 0:
        return encoded
    return msgspec.json.encode({**body, "note": "x" * missing})


def order_body(event: str, order: str, at: str, serial: int) -> bytes:
    """An order source's delivery (``order.created``, ``order.paid``) of about 1 KB."""
    return _padded(
        {
            "event": event,
            "orderId": order,
            "createdAt": at,
            "customerEmail": f"customer-{order}@example.com",
            "currency": "EUR",
            "orderTotal": round(19.95 * (1 + serial % 5), 2),
            "lineItems": [
                {
                    "sku": f"SKU-{(serial + n) % 997:04d}",
                    "name": f"Item {n}",
                    "quantity": 1 + n,
                    "unitPrice": 19.95,
                }
                for n in range(3)
            ],
            "shippingAddress": {
                "name": "Sample Person",
                "line1": "Main Street 1",
                "city": "Tallinn",
                "postalCode": "10111",
                "country": "EE",
            },
        }
    )


def decision_body(order: str, session: str, status: str, code: int, at: str) -> bytes:
    """A Veriff decision of about 1 KB, with the identity data a real one holds."""
    return _padded(
        {
            "status": "success",
            "verification": {
                "id": session,
                "attemptId": f"{session}-{code}",
                "code": code,
                "status": status,
                "reason": None,
                "reasonCode": None,
                "vendorData": order,
                "decisionTime": at,
                "acceptanceTime": at,
                "person": {
                    "firstName": "SAMPLE",
                    "lastName": "PERSON",
                    "dateOfBirth": "1990-01-01",
                    "nationality": "EE",
                    "idNumber": "39001010000",
                },
                "document": {
                    "type": "PASSPORT",
                    "country": "EE",
                    "number": "KE0000000",
                    "validUntil": "2030-01-01",
                },
            },
            "technicalData": {"ip": "203.0.113.7"},
        }
    )


def _http_request(host: str, provider: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"POST /api/v1/{provider}/webhook HTTP/1.1",
        f"Host: {host}",
        "User-Agent: hookledger-bench",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


ORDERS_PER_WINDOW = 256


def signed_requests(host: str, tag: str, count: int) -> Iterator[bytes]:
    """``count`` unique signed deliveries, four per order, half of each provider.

    Each order lives through order.created, a resubmission request, an approval
    and order.paid, so streams grow the way real ones do. An order's deliveries
    are ``ORDERS_PER_WINDOW`` requests apart, as a real order's are minutes apart:
    back-to-back deliveries to one stream would measure contention that real
    traffic does not have.
    """
    now = time.time()
    stamp = int(now)
    window = ORDERS_PER_WINDOW * 4
    for serial in range(count):
        base, offset = divmod(serial, window)
        step, slot = divmod(offset, ORDERS_PER_WINDOW)
        order = f"{tag}-{base * ORDERS_PER_WINDOW + slot}"
        at = _iso(now + serial / 1000)
        if step in (0, 3):
            body = order_body("order.created" if step == 0 else "order.paid", order, at, serial)
            msg_id = f"msg_{tag}_{serial}"
            yield _http_request(
                host,
                "post-purchase",
                body,
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": standard_webhooks_sign(
                        POST_PURCHASE_SECRET, msg_id, stamp, body
                    ),
                },
            )
        else:
            status, code = ("resubmission_requested", 9103) if step == 1 else ("approved", 9001)
            body = decision_body(order, f"session-{order}", status, code, at)
            yield _http_request(
                host, "veriff", body, {"X-HMAC-Signature": hmac_sha256_hex(VERIFF_SECRET, body)}
            )


def write_request_files(prefix: Path, host: str, total: int, threads: int) -> list[Path]:
    """One file per wrk thread (``prefix.N``), records of ``<length>\\n<request>``."""
    tag = uuid.uuid4().hex[:10]
    paths = []
    for index in range(threads):
        path = prefix.with_name(f"{prefix.name}.{index}")
        with path.open("wb", buffering=1 << 20) as out:
            for request in signed_requests(host, f"{tag}-{index}", total // threads):
                out.write(b"%d\n" % len(request))
                out.write(request)
        paths.append(path)
    return paths
