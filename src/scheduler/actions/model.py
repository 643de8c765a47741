"""What an outbound action is, as the policy asks for it and as the queue holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

EMAIL_REMINDER = "email.reminder"
EMAIL_EXPIRED = "email.expired"
REFUND = "refund"
KINDS = frozenset({EMAIL_REMINDER, EMAIL_EXPIRED, REFUND})


class ActionRequest(msgspec.Struct, frozen=True):
    """One action to perform once.

    ``key`` is the idempotency key, deterministic: ``f"{kind}:{trigger_event_id}"``
    (see ``for_trigger``); every call and every outcome event carries it.
    ``params`` for emails: ``to``, ``order_id``, ``due_at`` (ISO 8601),
    ``order_total``, ``currency``; for a refund: ``amount`` (decimal string),
    ``currency``, ``transaction_id``, ``card_last4``. Missing values are None.
    """

    key: str
    kind: str
    order_id: str
    trigger_event_id: str
    params: dict[str, Any]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown action kind {self.kind!r}; known: {sorted(KINDS)}")

    @classmethod
    def for_trigger(
        cls, kind: str, order_id: str, trigger_event_id: str, params: dict[str, Any]
    ) -> ActionRequest:
        """The action ``kind`` caused by the ledger event ``trigger_event_id``."""
        return cls(f"{kind}:{trigger_event_id}", kind, order_id, trigger_event_id, params)


class ClaimedAction(msgspec.Struct, frozen=True):
    """A pending action locked by a worker: what to do and how often it was tried."""

    request: ActionRequest
    attempts: int
    retries: int


class DeadLetter(msgspec.Struct, frozen=True):
    """An action that will not be tried again until an operator re-queues it."""

    key: str
    kind: str
    order_id: str
    attempts: int
    retries: int
    last_error: str | None
    updated_at: datetime
