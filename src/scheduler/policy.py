"""The countdown policy: a consumer of the ledger that records decisions as events
and queues the actions decisions call for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from events.appender import Appender
from events.connector import Session
from events.model import NewEvent, RecordedEvent
from projections.facts import order_id_of
from projections.fold import REFUNDING_TYPES, OrderState
from projections.projectors import group_by_order, read_order_streams, touched_orders
from scheduler.actions.model import ActionRequest
from scheduler.actions.queue import enqueue
from scheduler.countdown import CountdownConfig, on_events

log = logging.getLogger(__name__)

# The decisions that lead to outbound actions, and the actions they lead to.
ACTIONS_FOR = {
    "countdown.expired": ("refund", "email.expired"),
    "countdown.reminder_due": ("email.reminder",),
}


# The event types the policy reacts to (with the payment types that refund an order).
DECIDING = ("order.", "verification.", "countdown.", *sorted(REFUNDING_TYPES))


def utc_now() -> datetime:
    return datetime.now(UTC)


class CountdownPolicy:
    """Decides, for each order a batch touched, what the countdown rules say."""

    name = "policy.countdown"

    def __init__(
        self,
        appender: Appender,
        config: CountdownConfig,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._appender = appender
        self._config = config
        self._clock = clock

    async def apply(self, session: Session, events: list[RecordedEvent]) -> None:
        # Action outcomes and email events decide nothing: pass them over unread.
        streams = touched_orders(events, lambda e: e.type.startswith(DECIDING))
        if not streams:
            return
        rows = await read_order_streams(session, streams, self.name)
        now = self._clock()
        states: dict[str, OrderState] = {}
        decided: list[list[NewEvent]] = []
        for order, order_events in group_by_order(rows):
            state, decisions = on_events(order, order_events, self._config, now)
            states[order] = state
            if decisions:
                decided.append(decisions)
        # Each order's decisions commit together; all orders share the appender's
        # batches. Decisions have fixed ids: after a crash they are made again and
        # recorded once.
        await asyncio.gather(*(self._appender.append_many(d) for d in decided))
        for decisions in decided:
            log.info(
                "countdown decided",
                extra={"stream": decisions[0].stream, "decisions": [d.type for d in decisions]},
            )
        actions = actions_for(events, states)
        if actions:
            await enqueue(session, actions)


def actions_for(
    events: Sequence[RecordedEvent], states: dict[str, OrderState]
) -> list[ActionRequest]:
    """The outbound actions the decisions in ``events`` call for."""
    actions: list[ActionRequest] = []
    for event in events:
        order = order_id_of(event.stream)
        if event.provider != "hookledger" or order is None or order not in states:
            continue
        for kind in ACTIONS_FOR.get(event.type, ()):
            actions.append(
                ActionRequest(
                    key=f"{kind}:{event.event_id}",
                    kind=kind,
                    order_id=order,
                    trigger_event_id=event.event_id,
                    params=_params(kind, states[order]),
                )
            )
    return actions


def _params(kind: str, state: OrderState) -> dict[str, object]:
    facts = state.facts
    total = str(facts.total) if facts.total is not None else None
    if kind == "refund":
        return {
            "amount": total,
            "currency": facts.currency,
            "transaction_id": facts.transaction_id,
            "card_last4": facts.card_last4,
        }
    countdown = state.countdown
    return {
        "to": facts.customer,
        "order_id": state.order_id,
        "due_at": countdown.due_at.isoformat() if countdown else None,
        "order_total": total,
        "currency": facts.currency,
    }
