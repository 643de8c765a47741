"""``hookledger verify --signatures``: every stored provider delivery checked
again against its provider's signature scheme, with the secrets configured now.

Whoever can write the database but holds none of the providers' secrets cannot
add or change a delivery that passes. A delivery is checked as it was received:
its raw bytes, the signed headers kept in its metadata, and the time it was
recorded (so a scheme's freshness window does not fail old deliveries). A
provider with no secret configured now (or no longer known) makes its
deliveries unverifiable, not failed. An element of a batch (SendGrid) holds
only if its bytes are where its metadata says in a delivery that verifies.
A delivery whose personal values were cut out is checked with them joined
back; one with a value erased cannot be, and is counted as erased, not failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from api.providers.base import Adapter
from events.chain import join
from events.connector import Database
from events.errors import HookledgerError
from events.model import RecordedEvent
from events.queries import QUERIES
from events.store import to_event


class Failure(msgspec.Struct, frozen=True):
    stream: str
    version: int
    position: int
    provider: str
    reason: str


class SignatureReport(msgspec.Struct):
    verified: int = 0
    erased: int = 0  # deliveries with a personal value erased: not checkable
    failed: list[Failure] = msgspec.field(default_factory=list)
    unverifiable: dict[str, int] = msgspec.field(default_factory=dict)


async def audit_signatures(db: Database, providers: Mapping[str, Adapter]) -> SignatureReport:
    """Check every provider delivery in the ledger (one snapshot)."""
    report = SignatureReport()
    # Batch deliveries by event id: their raw body, whether it verified (None:
    # unverifiable) and how many elements are still to come. Elements follow
    # their delivery in the same append; a delivery is dropped after its last.
    deliveries: dict[str, tuple[bytes, bool | None, int]] = {}
    gone: set[str] = set()  # deliveries with a personal value erased
    async with db.snapshot() as session:
        async for row in session.stream_rows(QUERIES["read_all_by_position"]):
            event, erased = _as_signed(to_event(row[:-1]), row[-1])
            metadata = event.metadata if isinstance(event.metadata, dict) else {}
            if "scheme" not in metadata:
                continue  # hookledger's own decisions and actions are not signed
            if "delivery" in metadata:
                _element(report, event, metadata, deliveries, erased, gone)
                continue
            verdict: bool | None
            if erased:
                report.erased += 1
                verdict = None
            else:
                verdict = _check(report, event, metadata, providers.get(event.provider))
            if event.type == f"{event.provider}.delivery":
                count = metadata.get("events")
                if erased:
                    gone.add(event.event_id)
                deliveries[event.event_id] = (
                    event.raw,
                    verdict,
                    count if isinstance(count, int) else -1,
                )
    return report


def _as_signed(event: RecordedEvent, values: list[bytes] | None) -> tuple[RecordedEvent, bool]:
    """The event with the raw bytes its provider signed (its personal values
    joined back into the skeleton), and whether one of them was erased."""
    if not event.personal:
        return event, False
    cuts = [int(entry["at"]) for entry in event.personal]
    if len(values or []) != len(cuts):
        return event, True
    whole = join(event.raw, cuts, [bytes(v) for v in values or []])
    return msgspec.structs.replace(event, raw=whole), False


def _check(
    report: SignatureReport,
    event: RecordedEvent,
    metadata: dict[str, Any],
    adapter: Adapter | None,
) -> bool | None:
    if adapter is None or not adapter.secrets:
        report.unverifiable[event.provider] = report.unverifiable.get(event.provider, 0) + 1
        return None
    headers = metadata.get("headers")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        _fail(report, event, "the signed headers were not kept")
        return False
    try:
        adapter.verify(headers, event.raw, event.recorded_at.timestamp())
    except HookledgerError as exc:
        _fail(report, event, exc.detail)
        return False
    report.verified += 1
    return True


def _element(
    report: SignatureReport,
    event: RecordedEvent,
    metadata: dict[str, Any],
    deliveries: dict[str, tuple[bytes, bool | None, int]],
    erased: bool,
    gone: set[str],
) -> None:
    key = str(metadata.get("delivery"))
    found = deliveries.get(key)
    offset = metadata.get("offset")
    if found is None or not isinstance(offset, int) or isinstance(offset, bool):
        _fail(report, event, "its delivery is not in the ledger before it")
        return
    raw, verdict, remaining = found
    if remaining == 1:
        del deliveries[key]
    else:
        deliveries[key] = (raw, verdict, remaining - 1)
    if erased or key in gone:
        report.erased += 1  # its own or its delivery's personal values were erased
    elif raw[offset : offset + len(event.raw)] != event.raw or not event.raw:
        _fail(report, event, "its bytes are not in its delivery where its metadata says")
    elif verdict is None:
        report.unverifiable[event.provider] = report.unverifiable.get(event.provider, 0) + 1
    elif not verdict:
        _fail(report, event, "its delivery's signature does not verify")
    else:
        report.verified += 1


def _fail(report: SignatureReport, event: RecordedEvent, reason: str) -> None:
    report.failed.append(
        Failure(event.stream, event.stream_version, event.position, event.provider, reason)
    )
