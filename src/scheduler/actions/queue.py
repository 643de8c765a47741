"""The action table: enqueue, claim, finish, and the dead-letter list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from events.connector import Database, Row, Session
from scheduler.actions.model import ActionRequest, ClaimedAction, DeadLetter
from scheduler.actions.queries import QUERIES

CHANNEL = "hookledger_actions"


class Finish(msgspec.Struct, frozen=True):
    """Where one claimed action goes after an attempt."""

    key: str
    state: str
    attempts: int
    delay: float = 0.0
    error: str | None = None


async def enqueue(session: Session, actions: Sequence[ActionRequest]) -> None:
    """Queue ``actions`` in the caller's transaction; a key already queued is
    left as it is. Workers are woken once the transaction commits."""
    if not actions:
        return
    columns = (
        [a.key for a in actions],
        [a.kind for a in actions],
        [a.order_id for a in actions],
        [a.trigger_event_id for a in actions],
        [msgspec.json.encode(a.params).decode() for a in actions],
    )
    if await session.fetch_all(QUERIES["enqueue"], columns):
        await session.execute(QUERIES["notify_enqueued"])


async def claim_due(session: Session, limit: int) -> list[ClaimedAction]:
    """Lock up to ``limit`` due pending actions for this transaction, skipping
    those another worker holds."""
    return [_claimed(r) for r in await session.fetch_all(QUERIES["claim_due"], (limit,))]


async def claim_key(session: Session, key: str) -> list[ClaimedAction]:
    """Lock one pending action, due or not; empty if it is not pending or held."""
    return [_claimed(r) for r in await session.fetch_all(QUERIES["claim_key"], (key,))]


async def recorded_outcomes(session: Session, event_ids: Sequence[str]) -> dict[str, str | None]:
    """Which of these outcome events the ledger holds, with the error each carries."""
    rows = await session.fetch_all(QUERIES["recorded_outcomes"], (list(event_ids),))
    return {r[0]: r[1] for r in rows}


async def finish(session: Session, done: Sequence[Finish]) -> None:
    """Move claimed actions on: done, dead, or pending again after ``delay`` seconds."""
    if not done:
        return
    columns = (
        [f.key for f in done],
        [f.state for f in done],
        [f.attempts for f in done],
        [f.delay for f in done],
        [f.error for f in done],
    )
    await session.execute(QUERIES["finish_attempts"], columns)


async def dead_letters(db: Database) -> list[DeadLetter]:
    """Every dead action, oldest first."""
    return [DeadLetter(*r) for r in await db.fetch_all(QUERIES["dead_letters"])]


async def seconds_to_next_due(db: Database) -> float | None:
    """How long until the soonest pending action is due (<= 0: due now); None
    when nothing is pending."""
    row = await db.fetch_one(QUERIES["next_due"])
    return None if row is None or row[0] is None else float(row[0])


async def action_state(db: Database, key: str) -> tuple[str, int, str | None] | None:
    """An action's state, attempts and last error; None if there is no such key."""
    row = await db.fetch_one(QUERIES["action_state"], (key,))
    return (row[0], row[1], row[2]) if row else None


def _claimed(row: Row) -> ClaimedAction:
    key, kind, order_id, trigger_event_id, params, attempts, retries = row
    request = ActionRequest(key, kind, order_id, trigger_event_id, params)
    return ClaimedAction(request, attempts=attempts, retries=retries)


async def record_breakers(
    session: Session, holder: str, states: Mapping[str, str], keep_seconds: float
) -> None:
    """Write this process's breakers whose state changed (``provider: state``),
    each trusted for ``keep_seconds`` unless written again."""
    if states:
        providers = list(states)
        params = (holder, keep_seconds, providers, [states[p] for p in providers])
        await session.execute(QUERIES["record_breakers"], params)


async def open_circuits(db: Database) -> dict[str, str]:
    """Each provider some live sending process holds open (``open`` or ``half_open``)."""
    return {str(p): str(s) for p, s in await db.fetch_all(QUERIES["open_circuits"])}
