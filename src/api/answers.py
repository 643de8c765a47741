"""What a verified delivery's answer says, and how it is counted."""

from __future__ import annotations

import logging
from typing import Any

from api.metrics import Metrics
from events.model import AppendOutcome, NewEvent

log = logging.getLogger("hookledger.api")


def outcome_of(outcome: AppendOutcome) -> str:
    """``recorded``, ``duplicate`` or ``conflict`` (a duplicate key, another body)."""
    if outcome.conflict:
        return "conflict"
    return "duplicate" if outcome.duplicate else "recorded"


def _event_answer(outcome: AppendOutcome) -> dict[str, Any]:
    if outcome.conflict:
        return {"idempotent": True, "conflict": True, "position": outcome.position}
    if outcome.duplicate:
        return {"idempotent": True, "position": outcome.position}
    return {"recorded": True, "position": outcome.position}


def answer(
    metrics: Metrics,
    provider: str,
    events: list[NewEvent],
    outcomes: list[AppendOutcome],
    *,
    batch: bool,
) -> dict[str, Any]:
    """The 200 answer for a delivery, counting its events and the delivery.

    A single event is answered as itself. A batch delivery (whose first record is
    the delivery itself) is answered with counts and one entry per element:
    ``{"recorded": 2, "idempotent": 1, "events": [...], "delivery": {...}}``.
    """
    counted = list(zip(events, outcomes, strict=True))
    if batch:
        counted = counted[1:]
    kinds = [outcome_of(outcome) for _, outcome in counted]
    for (event, outcome), kind in zip(counted, kinds, strict=True):
        if kind == "conflict":
            log.warning(
                "event id reused with a different body",
                extra={"provider": provider, "event_id": event.event_id,
                       "position": outcome.position},
            )  # fmt: skip
    if "recorded" in kinds:
        delivery_kind = "recorded"
    else:
        delivery_kind = "conflict" if "conflict" in kinds else "duplicate"
    metrics.accepted(provider, delivery_kind, kinds)
    if not batch:
        return _event_answer(outcomes[0])
    return {
        "recorded": kinds.count("recorded"),
        "idempotent": len(kinds) - kinds.count("recorded"),
        "events": [
            {"event_id": event.event_id, **_event_answer(outcome)} for event, outcome in counted
        ],
        "delivery": {"event_id": events[0].event_id, **_event_answer(outcomes[0])},
    }
