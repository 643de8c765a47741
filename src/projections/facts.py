"""What the folds need to know from each provider's events.

The ledger keeps every body as the provider sent it; reading meaning out of it
happens here, at fold time, so a better reading applies to the past on replay.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import msgspec

from events.model import ORDER_STREAM_PREFIX, Identified
from events.times import believable, read_time

HOOKLEDGER = "hookledger"
# No order totals more digits than this before the point, or after it.
MAX_AMOUNT_DIGITS = 30
# Nor is it written in more characters than this.
MAX_AMOUNT_TEXT = 100
# Decisions after which a verification session is no longer waiting on Veriff.
FINAL_DECISIONS = frozenset(
    {"approved", "declined", "resubmission_requested", "expired", "abandoned"}
)


class EventLike(Identified, Protocol):
    """The parts of a ledger event the folds read."""

    @property
    def occurred_at(self) -> datetime | None: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def payload(self) -> Any: ...


class FoldEvent(msgspec.Struct, frozen=True):
    """A ledger event without its raw bytes and hashes: what replays read."""

    position: int
    provider: str
    event_id: str
    type: str
    occurred_at: datetime | None
    recorded_at: datetime
    payload: Any


class OrderFacts(msgspec.Struct, frozen=True):
    total: Decimal | None = None
    currency: str | None = None
    customer: str | None = None
    created_at: datetime | None = None
    transaction_id: str | None = None
    card_last4: str | None = None


class Decision(msgspec.Struct, frozen=True):
    """A Veriff decision or session event about one session."""

    session: str
    status: str
    at: datetime
    submitted_at: datetime | None


def order_id_of(stream: str) -> str | None:
    """The order a stream belongs to, if it is an order's stream."""
    if not stream.startswith(ORDER_STREAM_PREFIX):
        return None
    return stream[len(ORDER_STREAM_PREFIX) :]


def moment(event: EventLike) -> datetime:
    """When the event happened: the provider's time, else when we recorded it
    (also for a time outside the accepted range, recorded before the intake
    checked: the year 9999 would overflow every computation made with it)."""
    return believable(event.occurred_at) or event.recorded_at


def order_facts(event: EventLike) -> OrderFacts:
    """The order's details in an ``order.*`` event of any order source."""
    body = event.payload if isinstance(event.payload, dict) else {}
    if event.provider == "shopify":
        return OrderFacts(
            total=_decimal(body.get("total_price")),
            currency=_text(body.get("currency")),
            customer=_text(body.get("email") or _get(body, "customer", "email")),
            created_at=_time(body.get("created_at")),
        )
    return OrderFacts(
        total=_decimal(body.get("orderTotal")),
        currency=_text(body.get("currency")),
        customer=_text(body.get("customerEmail")),
        created_at=_time(body.get("createdAt")),
        transaction_id=_text(body.get("transactionId")),
        card_last4=_text(body.get("cardLast4")),
    )


def payment_transaction(event: EventLike) -> str | None:
    """The gateway's transaction id in a captured or authorised payment event."""
    body = event.payload if isinstance(event.payload, dict) else {}
    inner = body.get("payload")
    return _text(inner.get("id")) if isinstance(inner, dict) else None


def veriff_decision(event: EventLike) -> Decision | None:
    """The session and status of a Veriff event (``verification.<status>``)."""
    if event.provider != "veriff" or not event.type.startswith("verification."):
        return None
    body = event.payload if isinstance(event.payload, dict) else {}
    verification = body.get("verification")
    if isinstance(verification, dict):
        session = _text(verification.get("id"))
        submitted = _time(verification.get("submissionTime"))
    else:
        session = _text(body.get("id"))
        submitted = None
    status = event.type.removeprefix("verification.")
    if status == "submitted":
        submitted = moment(event)
    return Decision(session=session or "", status=status, at=moment(event), submitted_at=submitted)


def _get(body: dict[str, Any], *path: str) -> Any:
    value: Any = body
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def _decimal(value: Any) -> Decimal | None:
    """An amount; None for what no order totals (``1e999999`` would not even fit
    Postgres' numeric, and the projection's write would fail)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, str) and len(value) > MAX_AMOUNT_TEXT:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number.adjusted() >= MAX_AMOUNT_DIGITS:
        return None
    exponent = number.as_tuple().exponent
    return number if isinstance(exponent, int) and exponent >= -MAX_AMOUNT_DIGITS else None


def _time(value: Any) -> datetime | None:
    """A provider's ISO 8601 time in the accepted range, else None."""
    return read_time(value)[0] if isinstance(value, str) else None
