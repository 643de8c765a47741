"""Veriff: hex HMAC-SHA256 of the body in ``X-HMAC-SIGNATURE`` (or ``X-Signature``).

Veriff sends no delivery id, so the event id is built from what identifies a
delivery, and a resend of the same delivery maps to the same id:

- decision webhook (``verification`` object):
  ``decision:<verification.id>:<code>:<status>:<decisionTime>``
- event webhook (``id``, ``attemptId``, ``action``): ``event:<id>:<attemptId>:<action>``
- the simplified legacy shape (``{"event": ..., "id": ..., "status": ...}``): ``id``

Missing parts are left empty. ``vendorData`` carries the order id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    check_order_time,
    event_name,
    identifier,
    json_object,
    optional_order_identifier,
    parse_time,
    stream_for,
)
from api.rejections import MalformedBody
from api.signatures import hmac_sha256_hex, verify_hex_hmac


class Veriff(Adapter):
    name = "veriff"
    scheme = "hmac-sha256-hex"
    signature_headers = ("x-hmac-signature", "x-signature")
    secrets_field = "veriff_secret"

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return {"content-type": "application/json", "x-hmac-signature": hmac_sha256_hex(key, body)}

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        signature = headers.get("x-hmac-signature") or headers.get("x-signature")
        verify_hex_hmac(self.secrets, body, signature, "X-HMAC-Signature or X-Signature")

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        body = json_object(payload)
        if isinstance(body.get("verification"), dict):
            return [self._decision(body, body["verification"])]
        if "action" in body and "id" in body:
            return [self._session_event(body)]
        if "id" in body and ("status" in body or "event" in body):
            return [self._simplified(body)]
        raise MalformedBody("not a Veriff decision, event or verification.updated body")

    def _decision(self, body: dict[str, Any], verification: dict[str, Any]) -> Normalised:
        session = identifier(verification.get("id"), "verification.id")
        status = event_name(verification.get("status"), "verification.status")
        code = _part(verification.get("code"), "verification.code")
        decided = verification.get("decisionTime", body.get("decisionTime"))
        occurred = parse_time(decided, "decisionTime")
        # The folds read the submission time (it decides whether an approval counts).
        parse_time(verification.get("submissionTime"), "verification.submissionTime")
        order = _order(verification.get("vendorData", body.get("vendorData")))
        return Normalised(
            event_id=f"decision:{session}:{code}:{status}:{_part(decided, 'decisionTime')}",
            type=f"verification.{status}",
            order_id=order,
            stream=stream_for(order, f"veriff-{session}"),
            occurred_at=occurred,
            payload=body,
        )

    def _session_event(self, body: dict[str, Any]) -> Normalised:
        session = identifier(body.get("id"), "id")
        action = event_name(body.get("action"), "action")
        attempt = _part(body.get("attemptId"), "attemptId")
        order = _order(body.get("vendorData"))
        return Normalised(
            event_id=f"event:{session}:{attempt}:{action}",
            type=f"verification.{action}",
            order_id=order,
            stream=stream_for(order, f"veriff-{session}"),
            occurred_at=_first_time(body, "acceptanceTime", "time"),
            payload=body,
        )

    def _simplified(self, body: dict[str, Any]) -> Normalised:
        event_id = identifier(body.get("id"), "id")
        status = body.get("status")
        kind = (
            f"verification.{event_name(status, 'status')}"
            if status is not None
            else event_name(body.get("event"), "event")
        )
        order = _order(body.get("vendorData"))
        check_order_time(kind, body)
        return Normalised(
            event_id=event_id,
            type=kind,
            order_id=order,
            stream=stream_for(order, f"veriff-{event_id}"),
            occurred_at=_first_time(body, "time", "createdAt"),
            payload=body,
        )


def _part(value: Any, what: str) -> str:
    """An optional part of a derived event id: absent, or a short string or integer."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 64:
        raise MalformedBody(f"{what} must be a string or integer of at most 64 characters")
    if "\x00" in str(value):  # Postgres text cannot hold NUL
        raise MalformedBody(f"{what} must not contain NUL characters")
    return str(value)


def _first_time(body: dict[str, Any], *fields: str) -> datetime | None:
    """The first of ``fields`` that holds a time; every one of them is checked."""
    times = [parse_time(body.get(field), field) for field in fields]
    return next((t for t in times if t is not None), None)


def _order(value: Any) -> str | None:
    return optional_order_identifier(value, "vendorData")
