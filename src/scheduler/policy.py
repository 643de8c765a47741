"""The countdown policy: a consumer of the ledger that records decisions as events
and queues the actions decisions call for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from events.appender import Appender
from events.checkpoints import commit_without_waiting
from events.connector import Session
from events.model import Headed, NewEvent
from projections.facts import FoldEvent, order_id_of
from projections.fold import REFUNDING_TYPES, OrderState
from projections.projectors import group_by_order, read_order_streams, touched_orders
from projections.stream_cache import StreamCache
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
        streams: StreamCache | None = None,
    ) -> None:
        self._appender = appender
        self._config = config
        self._clock = clock
        # Shared with the projections of this process, which read the same streams.
        self._streams = streams

    async def _read(
        self, session: Session, streams: list[str], upto: int
    ) -> list[tuple[str, list[FoldEvent], OrderState | None]]:
        """Each order's events, and their fold when the stream cache has it."""
        if self._streams is None:
            rows = await read_order_streams(session, streams, self.name)
            return [(order, events, None) for order, events in group_by_order(rows)]
        read = await self._streams.read(session, streams, self.name, upto)
        return [(f.order_id, f.events, f.state) for f in read]

    async def apply(self, session: Session, events: Sequence[Headed]) -> None:
        # Action outcomes and email events decide nothing: pass them over unread.
        streams = touched_orders(events, lambda e: e.type.startswith(DECIDING))
        if not streams:
            return
        # Decisions are appended durably on their own; what commits here (the
        # actions queued, the checkpoint) is made again after a crash, once.
        await commit_without_waiting(session)
        now = self._clock()
        states: dict[str, OrderState] = {}
        decided: list[list[NewEvent]] = []
        for order, order_events, folded in await self._read(session, streams, events[-1].position):
            state, decisions = on_events(order, order_events, self._config, now, folded)
            states[order] = state
            if decisions:
                decided.append(decisions)
        # Each order's decisions commit together; all orders share the appender's
        # batches. Decisions have fixed ids: after a crash they are made again and
        # recorded once.
        await asyncio.gather(*(self._appender.append_many(d) for d in decided))
        _log_decisions(decided)
        actions = actions_for(events, states)
        if actions:
            await enqueue(session, actions)


# Decisions routine enough to be logged as a count per batch (a line per order
# cost the intake a few percent under load); the others get a line each. Every
# decision is an event: `hookledger history ORDER` shows an order's.
ROUTINE = frozenset({"countdown.started", "countdown.satisfied"})


def _log_decisions(decided: Sequence[Sequence[NewEvent]]) -> None:
    counts: dict[str, int] = {}
    for decisions in decided:
        types = [d.type for d in decisions]
        for kind in types:
            counts[kind] = counts.get(kind, 0) + 1
        if not ROUTINE.issuperset(types):
            log.info("countdown decided", extra={"stream": decisions[0].stream,
                                                 "decisions": types})  # fmt: skip
    if counts:
        log.info("countdown decisions", extra={"orders": len(decided), "decisions": counts})


def actions_for(events: Sequence[Headed], states: dict[str, OrderState]) -> list[ActionRequest]:
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
