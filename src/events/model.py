"""Event types: what is appended and what is read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

# An order's events live in the stream order-<order id>; other streams have no order.
ORDER_STREAM_PREFIX = "order-"


class NewEvent(msgspec.Struct, frozen=True):
    """An event about to be appended.

    ``payload_json`` is the JSON text stored as ``payload`` (jsonb); ``raw`` is the
    exact bytes received, kept so that a signature can be checked again later.
    """

    provider: str
    event_id: str
    stream: str
    type: str
    payload_json: bytes
    raw: bytes
    occurred_at: datetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class CutEvent(msgspec.Struct, frozen=True):
    """An event with its personal values cut out, as the ledger records it.

    ``raw`` is the skeleton and ``payload_json`` the payload with null in the
    values' places; ``entries`` go into the chain (hash rule 3); ``values`` are
    the rows of ``personal_values`` (salts and values: the only copy).
    """

    raw: bytes
    payload_json: bytes
    entries: list[dict[str, Any]]
    values: list[dict[str, Any]]


class Cutter(Protocol):
    """Cuts the personal values out of an event about to be appended."""

    async def ready(self, session: Any) -> None:
        """Load what cutting needs from the database (once; ``session`` is an
        ``events.connector.Session``)."""
        ...

    def cut(self, event: NewEvent) -> CutEvent | None:
        """The event cut, or None when it holds nothing personal."""
        ...


class AppendOutcome(msgspec.Struct, frozen=True):
    """What became of one appended event.

    ``duplicate`` means the idempotency key was already recorded (``position`` is
    the original's); ``conflict`` means it was recorded with a different body.
    """

    position: int
    duplicate: bool = False
    conflict: bool = False


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as the ledger holds it."""

    position: int
    provider: str
    event_id: str
    stream: str
    stream_version: int
    type: str
    occurred_at: datetime | None
    recorded_at: datetime
    payload: Any
    raw: bytes
    metadata: dict[str, Any]
    prev_hash: str
    hash: str
    hash_rule: int = 1  # which rule of events/chain.py made ``hash``
    # The personal values cut out of ``raw`` (hash rule 3): one entry each, with
    # its path, where it was cut and its commitment; None when nothing was cut.
    # ``raw`` is then the skeleton, and ``payload`` holds the values still kept.
    personal: list[dict[str, Any]] | None = None
    # Which of those values are still held (their indexes); the others were erased.
    held: list[int] | None = None


class EventHead(msgspec.Struct, frozen=True):
    """What a consumer that reads whole streams again needs of each new event:
    where it is and what it is, not its body (``store.read_heads_after``)."""

    position: int
    provider: str
    event_id: str
    stream: str
    type: str


class Identified(Protocol):
    """Which event it is: where in the ledger, from whom, of what type."""

    @property
    def position(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...


class Headed(Identified, Protocol):
    """An event's head, whether read alone (EventHead) or with the whole event."""

    @property
    def stream(self) -> str: ...
