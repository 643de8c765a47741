"""A named source signed with Standard Webhooks, declared in configuration alone.

The source says where its bodies keep the order id and the type (dotted paths
such as ``data.order.id``) or gives a fixed type. Svix, the largest sender of
Standard Webhooks, names the headers ``svix-id``, ``svix-timestamp`` and
``svix-signature``; those are read when the ``webhook-*`` ones are absent.
Event id: the message id header.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from api.providers.base import (
    Adapter,
    Normalised,
    SecretValues,
    check_order_time,
    event_name,
    identifier,
    lookup,
    optional_order_identifier,
    parse_time,
    stream_for,
)
from api.signatures import (
    standard_webhooks_key,
    standard_webhooks_sign,
    verify_standard_webhooks,
)

_PARTS = ("id", "timestamp", "signature")


def standard_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The three ``webhook-*`` headers, taken from ``svix-*`` where they are missing."""
    found: dict[str, str] = {}
    for part in _PARTS:
        value = headers.get(f"webhook-{part}") or headers.get(f"svix-{part}")
        if value is not None:
            found[f"webhook-{part}"] = value
    return found


def standard_webhooks_headers(
    key: str, body: bytes, now: int, prefix: str = "webhook"
) -> dict[str, str]:
    """A delivery of ``body`` signed with Standard Webhooks, under a new message id
    (``prefix``: ``svix`` for Svix's header names)."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    return {
        "content-type": "application/json",
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(now),
        f"{prefix}-signature": standard_webhooks_sign(key, msg_id, now, body),
    }


class StandardSource(Adapter):
    """One configured source; ``name`` is the provider's path segment."""

    scheme = "standard-webhooks"
    signature_headers = tuple(f"{prefix}-{part}" for prefix in ("webhook", "svix")
                              for part in _PARTS)  # fmt: skip

    def __init__(
        self,
        name: str,
        secrets: Sequence[str] | SecretValues,
        secret_setting: str,
        *,
        order_path: str | None,
        type_path: str | None,
        fixed_type: str | None,
        time_path: str | None,
    ) -> None:
        super().__init__(secrets, secret_setting)
        for secret in self.secrets:
            standard_webhooks_key(secret)  # ValueError: the start fails
        self.name = name
        self.order_path = order_path
        self.type_path = type_path
        self.fixed_type = fixed_type
        self.time_path = time_path

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return standard_webhooks_headers(key, body, now)

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_standard_webhooks(self.secrets, standard_headers(headers), body, now)

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        standard = standard_headers(headers)
        event_id = identifier(standard.get("webhook-id"), "webhook-id")
        if self.fixed_type is not None:
            kind = self.fixed_type
        else:
            assert self.type_path is not None  # the configuration gives one or the other
            kind = event_name(lookup(payload, self.type_path), self.type_path)
        order = (
            optional_order_identifier(lookup(payload, self.order_path), self.order_path)
            if self.order_path
            else None
        )
        check_order_time(kind, payload)
        occurred = (
            parse_time(lookup(payload, self.time_path), self.time_path) if self.time_path else None
        ) or parse_time(int(standard["webhook-timestamp"]), "webhook-timestamp")
        return [
            Normalised(
                event_id=event_id,
                type=kind,
                order_id=order,
                stream=stream_for(order, f"{self.name}-{event_id}"),
                occurred_at=occurred,
                payload=payload,
            )
        ]
