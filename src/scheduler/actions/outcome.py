"""Outcome events: one per attempt, with a deterministic id so that an attempt
recorded twice (a worker died between appending and updating its row) is
recorded once."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from events.model import NewEvent
from scheduler.actions.http import Prepared, Verdict
from scheduler.actions.model import ClaimedAction

PROVIDER = "hookledger"
Outcome = Literal["dry_run", "succeeded", "failed", "dead_lettered"]
State = Literal["pending", "done", "dead"]
STATE_AFTER: dict[Outcome, State] = {
    "dry_run": "done",
    "succeeded": "done",
    "failed": "pending",
    "dead_lettered": "dead",
}


def event_id(key: str, outcome: Outcome, attempt: int, retries: int) -> str:
    """``action:<key>:<outcome>``, ``:<attempt>`` added for a failure. After an
    operator's n-th re-queue, failures and dead letters end in ``:retry<n>`` so
    that each round's attempts are recorded too; a success or dry run happens
    once per action."""
    ident = f"action:{key}:{outcome}"
    if outcome == "failed":
        ident += f":{attempt}"
    if retries and outcome in ("failed", "dead_lettered"):
        ident += f":retry{retries}"
    return ident


def final_event_ids(claimed: ClaimedAction) -> dict[str, State]:
    """The ids under which this round of the action may already have ended, and
    the state each means."""
    key, retries = claimed.request.key, claimed.retries
    return {
        event_id(key, "succeeded", 0, retries): "done",
        event_id(key, "dry_run", 0, retries): "done",
        event_id(key, "dead_lettered", 0, retries): "dead",
    }


def outcome_event(
    claimed: ClaimedAction,
    outcome: Outcome,
    prepared: Prepared,
    verdict: Verdict | None,
    error: str | None,
    retry_in: float | None = None,
) -> NewEvent:
    """The ledger record of one attempt, in the action's order stream."""
    action = claimed.request
    attempt = claimed.attempts + 1
    payload: dict[str, Any] = {
        "action": action.kind,
        "idempotency_key": action.key,
        "sent_key": prepared.sent_key,
        "order_id": action.order_id,
        "trigger_event_id": action.trigger_event_id,
        "attempt": attempt,
        "retry": claimed.retries,
        "request": prepared.request.redacted(),
        "response": verdict.response if verdict is not None else None,
        "error": error,
    }
    if retry_in is not None:
        payload["retry_in_seconds"] = round(retry_in, 3)
    body = msgspec.json.encode(payload)
    return NewEvent(
        provider=PROVIDER,
        event_id=event_id(action.key, outcome, attempt, claimed.retries),
        stream=f"order-{action.order_id}",
        type=f"action.{outcome}",
        payload_json=body,
        raw=body,
    )
