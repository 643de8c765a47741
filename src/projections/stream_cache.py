"""Order streams read and folded once for all the consumers of a process.

The three projections and the countdown policy each read, for every batch, the
whole streams of the orders it touched and fold them: the same streams, the
same events, four reads and four folds. They follow the ledger in near
lockstep, so the first to reach a batch reads its streams and the others take
them from here.

An entry is good for a consumer whose batch ends at or before the ledger's head
when the entry was read: every event up to that head is in it (appends become
visible in position order). It may hold later events too; a consumer folding
them early is what reading the database would have done anyway.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from events.connector import Session
from events.queries import load
from projections.facts import FoldEvent
from projections.fold import OrderState, fold

QUERIES = load(Path(__file__).with_name("stream_cache.sql"))

# Streams kept: some batches' worth, so consumers a few batches apart still share.
CAPACITY = 5_000


class _Entry:
    __slots__ = ("events", "head", "state")

    def __init__(self, head: int, events: list[FoldEvent]) -> None:
        self.head = head
        self.events = events
        self.state: OrderState | None = None


class Folded:
    """One order's events (less those its consumer set aside) and their fold."""

    __slots__ = ("_entry", "events", "order_id")

    def __init__(self, order_id: str, events: list[FoldEvent], entry: _Entry | None) -> None:
        self.order_id = order_id
        self.events = events
        self._entry = entry

    @property
    def state(self) -> OrderState:
        """The fold, made once per entry whoever asks first."""
        if self._entry is None:
            return fold(self.order_id, self.events)
        if self._entry.state is None:
            self._entry.state = fold(self.order_id, self.events)
        return self._entry.state


class StreamCache:
    """The latest read of recently touched order streams (least recently used
    dropped first)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Future[None]] = {}
        self.reads = self.hits = 0

    async def read(
        self, session: Session, streams: Sequence[str], consumer: str, upto: int
    ) -> list[Folded]:
        """Each of ``streams`` whole as of at least position ``upto``, without
        the events ``consumer`` set aside, in the order of ``streams``."""
        missing = self._missing(streams, upto)
        # The process's consumers take the same batches at about the same time:
        # wait for the reads already under way rather than make them again.
        pending = {self._loading[s] for s in missing if s in self._loading}
        if pending:
            await asyncio.wait(pending)
            missing = self._missing(missing, upto)
        self.reads += len(streams)
        self.hits += len(streams) - len(missing)
        # Held here, not only in the cache: a small cache may drop them at once.
        entries = {s: e for s in streams if (e := self._entries.get(s)) is not None}
        for stream in entries:
            self._entries.move_to_end(stream)  # used: the last to be dropped
        if missing:
            entries.update(await self._load(session, missing))
        aside = {r[0] for r in await session.fetch_all(QUERIES["set_aside"], (consumer,))}
        found: list[Folded] = []
        for stream in streams:
            entry = entries.get(stream)
            if entry is None:  # no event of it at all (it cannot be touched then)
                continue
            order = stream.removeprefix("order-")
            if aside and any(e.position in aside for e in entry.events):
                kept = [e for e in entry.events if e.position not in aside]
                found.append(Folded(order, kept, None))
            else:
                found.append(Folded(order, entry.events, entry))
        return found

    def _missing(self, streams: Sequence[str], upto: int) -> list[str]:
        return [s for s in streams if (e := self._entries.get(s)) is None or e.head < upto]

    async def _load(self, session: Session, streams: list[str]) -> dict[str, _Entry]:
        done = asyncio.get_running_loop().create_future()
        for stream in streams:
            self._loading[stream] = done
        try:
            rows = await session.fetch_all(QUERIES["read_streams_with_head"], (streams,))
        finally:
            done.set_result(None)
            for stream in streams:
                if self._loading.get(stream) is done:
                    del self._loading[stream]
        loaded: dict[str, list[FoldEvent]] = {}
        head = int(rows[0][1]) if rows else 0
        for stream, _, *fields in rows:
            loaded.setdefault(stream, []).append(FoldEvent(*fields))
        entries = {stream: _Entry(head, events) for stream, events in loaded.items()}
        for stream, entry in entries.items():
            self._entries[stream] = entry
            self._entries.move_to_end(stream)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return entries
