"""The projections: each rewrites the rows of the orders a batch of events touched,
from a fold of those orders' whole streams, so arrival order never matters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString

from events.checkpoints import commit_without_waiting
from events.connector import Row, Session
from events.model import Headed
from events.quarantine import error_text
from events.queries import load
from projections.facts import FoldEvent, order_id_of
from projections.fold import PAYMENT_TYPES, OrderState, fold
from projections.stream_cache import StreamCache

QUERIES = load(Path(__file__).with_name("queries.sql"))
# The timer workers look at least this often (their poll); a timer due later
# needs no NOTIFY to be found in time.
WAKE_TIMERS_WITHIN = timedelta(seconds=60)


class Table:
    """One table a projection writes: its columns, and how to refill rows."""

    def __init__(
        self,
        name: str,
        columns: tuple[str, ...],
        delete: str,
        insert: str,
        *,
        timestamped: bool = True,
    ) -> None:
        self.name = name
        self.columns = columns
        self.timestamped = timestamped  # has an updated_at column besides ``columns``
        self.delete: LiteralString = QUERIES[delete]
        self.insert: LiteralString = QUERIES[insert]


class Projection:
    """A named fold into tables; ``rows`` turns one order's state into each
    table's rows (values in the order of the table's columns)."""

    def __init__(self, name: str, tables: tuple[Table, ...]) -> None:
        self.name = name
        self.tables = tables

    @property
    def consumer_name(self) -> str:
        return f"projection.{self.name}"

    def rows(self, state: OrderState) -> list[list[tuple[Any, ...]]]:
        raise NotImplementedError

    def relevant(self, event: Headed) -> bool:
        """Whether the event can change this projection's rows: the others (an
        email's delivery, a dry run) are passed over without a refold."""
        raise NotImplementedError

    async def write(self, session: Session, states: Sequence[OrderState]) -> None:
        """Replace the rows of these orders with what their states say."""
        ids = [s.order_id for s in states]
        per_table: list[list[tuple[Any, ...]]] = [[] for _ in self.tables]
        for state in states:
            for bucket, rows in zip(per_table, self.rows(state), strict=True):
                bucket.extend(rows)
        for table, rows in zip(self.tables, per_table, strict=True):
            await session.execute(table.delete, (ids,))
            if rows:
                await session.execute(table.insert, [_column(c) for c in zip(*rows, strict=True)])


class OrdersProjection(Projection):
    def __init__(self) -> None:
        columns = ("order_id", "created_at", "total", "currency", "customer", "status")
        super().__init__("orders", (Table("orders", columns, "delete_orders", "insert_orders"),))

    def relevant(self, event: Headed) -> bool:
        kind = event.type
        return (
            kind.startswith(("order.", "payment."))
            or kind in PAYMENT_TYPES  # Stripe's names: charge.refunded, ...
            or kind == "action.succeeded"
        )

    def rows(self, state: OrderState) -> list[list[tuple[Any, ...]]]:
        o = state.order
        if o is None:
            return [[]]
        return [[(o.order_id, o.created_at, o.total, o.currency, o.customer, o.status)]]


class VerificationsProjection(Projection):
    def __init__(self) -> None:
        columns = ("order_id", "sessions", "latest_decision", "decided_at", "submitted_at",
                   "attempts")  # fmt: skip
        table = Table("verifications", columns, "delete_verifications", "insert_verifications")
        super().__init__("verifications", (table,))

    def relevant(self, event: Headed) -> bool:
        return event.provider == "veriff"

    def rows(self, state: OrderState) -> list[list[tuple[Any, ...]]]:
        v = state.verification
        if v is None:
            return [[]]
        return [[(v.order_id, list(v.sessions), v.latest_decision, v.decided_at,
                  v.submitted_at, v.attempts)]]  # fmt: skip


class CountdownsProjection(Projection):
    def __init__(self) -> None:
        columns = ("order_id", "started_at", "due_at", "expires_at", "reminders", "reminded",
                   "state", "closed_at")  # fmt: skip
        super().__init__(
            "countdowns",
            (
                Table("countdowns", columns, "delete_countdowns", "insert_countdowns"),
                Table(
                    "countdown_timers",
                    ("order_id", "timer", "due_at"),
                    "delete_timers",
                    "insert_timers",
                    timestamped=False,
                ),
            ),
        )

    def relevant(self, event: Headed) -> bool:
        return event.type.startswith("countdown.") or event.provider == "veriff"

    def rows(self, state: OrderState) -> list[list[tuple[Any, ...]]]:
        c = state.countdown
        if c is None:
            return [[], []]
        countdown = (c.order_id, c.started_at, c.due_at, c.expires_at, list(c.reminders),
                     list(c.reminded), c.state, c.closed_at)  # fmt: skip
        return [[countdown], [(t.order_id, t.timer, t.due_at) for t in state.timers]]

    async def write(self, session: Session, states: Sequence[OrderState]) -> None:
        await super().write(session, states)
        # Wake the timer workers when a new or moved timer may be due before they
        # would look again (NOTIFY takes a lock every commit of the cluster shares).
        soon = datetime.now(UTC) + WAKE_TIMERS_WITHIN
        if any(t.due_at <= soon for state in states for t in state.timers):
            await session.execute(QUERIES["notify_timers"])


PROJECTIONS: dict[str, Projection] = {
    p.name: p for p in (OrdersProjection(), VerificationsProjection(), CountdownsProjection())
}


class ProjectionConsumer:
    """Applies a projection to each batch of the ledger (a ``Consumer``)."""

    def __init__(self, projection: Projection, streams: StreamCache | None = None) -> None:
        self.projection = projection
        self.name = projection.consumer_name
        # Shared with the process's other consumers, which read the same streams.
        self._streams = streams

    async def apply(self, session: Session, events: Sequence[Headed]) -> None:
        streams = touched_orders(events, self.projection.relevant)
        if not streams:
            return
        # Rows rebuilt from the ledger: a crash costs a batch applied again.
        await commit_without_waiting(session)
        if self._streams is None:
            states = await fold_streams(session, streams, self.name)
        else:
            read = await self._streams.read(session, streams, self.name, events[-1].position)
            states = [folded.state for folded in read]
        await self.projection.write(session, states)


def touched_orders(events: Iterable[Headed], relevant: Callable[[Headed], bool]) -> list[str]:
    """The order streams that ``relevant`` events of a batch belong to, sorted."""
    return sorted({e.stream for e in events if order_id_of(e.stream) is not None and relevant(e)})


async def fold_streams(
    session: Session, streams: Sequence[str], consumer: str | None = None
) -> list[OrderState]:
    """Read these order streams whole (less what ``consumer`` set aside) and fold each."""
    rows = await read_order_streams(session, streams, consumer)
    return [fold(order, events) for order, events in group_by_order(rows)]


# An event a fold could not read, and why (``events.quarantine.error_text``).
SetAside = tuple[FoldEvent, str]


def fold_apart(order: str, events: list[FoldEvent]) -> tuple[OrderState, list[SetAside]]:
    """``fold``, and should it raise, the fold of the events it can read plus the
    ones it cannot (each found by folding the stream one event longer at a
    time: a rebuild folds whole streams, yet sets aside single events)."""
    try:
        return fold(order, events), []
    except Exception as exc:
        # Which events it cannot read is found below; the caller sets them aside and logs.
        whole = error_text(exc)
    kept: list[FoldEvent] = []
    apart: list[SetAside] = []
    for event in events:
        try:
            fold(order, [*kept, event])
        except Exception as exc:
            apart.append((event, error_text(exc)))
        else:
            kept.append(event)
    try:
        return fold(order, kept), apart
    except Exception:
        # Events that fail only together: all of them aside, with the first error.
        return fold(order, []), [(event, whole) for event in events]


async def fold_streams_apart(
    session: Session, streams: Sequence[str]
) -> tuple[list[OrderState], list[SetAside]]:
    """``fold_streams``, setting aside the events a fold cannot read."""
    rows = await read_order_streams(session, streams)
    states: list[OrderState] = []
    apart: list[SetAside] = []
    for order, events in group_by_order(rows):
        state, failed = fold_apart(order, events)
        states.append(state)
        apart.extend(failed)
    return states, apart


async def read_order_streams(
    session: Session, streams: Sequence[str], consumer: str | None = None
) -> list[Row]:
    """The events of these order streams, in stream order, without those
    ``consumer`` has set aside (``events.quarantine``)."""
    return await session.fetch_all(QUERIES["read_order_streams"], (list(streams), consumer))


def group_by_order(rows: Iterable[Row]) -> Iterable[tuple[str, list[FoldEvent]]]:
    """Rows sorted by stream, as (order id, its events)."""
    current: str | None = None
    events: list[FoldEvent] = []
    for stream, *fields in rows:
        if stream != current:
            if current is not None and events:
                yield current.removeprefix("order-"), events
            current, events = stream, []
        events.append(FoldEvent(*fields))
    if current is not None and events:
        yield current.removeprefix("order-"), events


def _column(values: tuple[Any, ...]) -> list[Any]:
    """One column for ``unnest``: arrays inside it travel as array literals, since
    unnest would flatten an array of arrays."""
    if values and isinstance(values[0], list):
        return [array_literal(map(_text, v)) for v in values]
    return list(values)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def array_literal(values: Iterable[str]) -> str:
    """A Postgres array literal, each element quoted."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"
