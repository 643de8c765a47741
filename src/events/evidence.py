"""Offline evidence of one order's history: every event with its raw body, its
place in the hash chain and an inclusion proof against one signed checkpoint,
the checkpoint itself and its key, in one JSON file that ``events.evidence_check``
(or an auditor's own verifier, written from the README) checks with no service
and no database."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from events import merkle, tree
from events.chain import format_time
from events.checkpoint_log import SignedCheckpoint
from events.connector import Database
from events.errors import TreeBehind, TreeBroken
from events.model import RecordedEvent
from events.queries import QUERIES
from events.store import read_stream

FORMAT = "hookledger-evidence/1"


def event_view(event: RecordedEvent) -> dict[str, Any]:
    """One event as auditors read it: everything needed to recompute its hash."""
    return {
        "position": event.position,
        "stream": event.stream,
        "version": event.stream_version,
        "provider": event.provider,
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": format_time(event.occurred_at) if event.occurred_at else None,
        "recorded_at": format_time(event.recorded_at),
        "payload": event.payload,
        "metadata": event.metadata,
        "raw_base64": base64.b64encode(event.raw).decode(),
        "raw_sha256": hashlib.sha256(event.raw).hexdigest(),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "hash_rule": event.hash_rule,
        **personal_view(event),
    }


def personal_view(event: RecordedEvent) -> dict[str, Any]:
    """The personal values cut out of an event (hash rule 3): each entry as the
    chain covers it, and whether its value is still held or was erased."""
    if event.hash_rule < 3:
        return {}
    held = set(event.held or [])
    entries = [
        {**entry, "state": "held" if n in held else "erased"}
        for n, entry in enumerate(event.personal or [])
    ]
    return {"personal": entries}


async def build_evidence(
    db: Database, stream: str, checkpoint: SignedCheckpoint, verifier_key: str
) -> dict[str, Any] | None:
    """The evidence of ``stream`` against ``checkpoint``; None if the stream has
    no events. Checks on the way that the stored tree holds exactly these events,
    so a ledger changed behind the tree's back yields no evidence."""
    events = await read_stream(db, stream)
    if not events:
        return None
    await _check_tail(db, checkpoint.size)
    rows = await db.fetch_all(QUERIES["tree_leaves_at"], ([e.position for e in events],))
    leaves = {int(r[0]): (int(r[1]), bytes(r[2])) for r in rows}
    indexes: list[int] = []
    for event in events:
        if event.position not in leaves:
            raise TreeBehind(
                f"the tree has not reached position {event.position} yet; retry shortly"
            )
        index, stored_leaf = leaves[event.position]
        if stored_leaf != merkle.leaf_hash(tree.leaf_data(event.hash, event.position)):
            raise TreeBroken(
                f"the event at position {event.position} is not the one the tree recorded",
                event.position,
            )
        if index >= checkpoint.size:
            raise TreeBehind(
                f"no signed checkpoint covers position {event.position} yet; retry shortly"
            )
        indexes.append(index)
    paths = await tree.inclusion_proofs(db, indexes, checkpoint.size)
    held = await _held_values(db, events)
    return {
        "format": FORMAT,
        "stream": stream,
        "checkpoint": checkpoint.note,
        "key_fingerprint": checkpoint.key_fingerprint,
        "verifier_key": verifier_key,
        "events": [
            {
                **_with_values(event_view(event), held.get(event.position, {})),
                "leaf_index": index,
                "inclusion_proof": [base64.b64encode(p).decode() for p in path],
            }
            for event, index, path in zip(events, indexes, paths, strict=True)
        ],
    }


async def _held_values(
    db: Database, events: list[RecordedEvent]
) -> dict[int, dict[int, tuple[bytes, bytes]]]:
    """The salts and values still held of these events' personal values."""
    positions = [e.position for e in events if e.personal]
    held: dict[int, dict[int, tuple[bytes, bytes]]] = {}
    if positions:
        for position, n, salt, value in await db.fetch_all(QUERIES["held_values"], (positions,)):
            held.setdefault(int(position), {})[int(n)] = (bytes(salt), bytes(value))
    return held


def _with_values(view: dict[str, Any], held: dict[int, tuple[bytes, bytes]]) -> dict[str, Any]:
    """An event's view with each held value and its salt: the evidence proves them."""
    if held and "personal" in view:
        view["personal"] = [
            {**entry, "salt_base64": base64.b64encode(held[n][0]).decode(),
             "value_base64": base64.b64encode(held[n][1]).decode()} if n in held else entry
            for n, entry in enumerate(view["personal"])
        ]  # fmt: skip
    return view


async def _check_tail(db: Database, size: int) -> None:
    """The checkpoint's last event must still be in the ledger, unchanged: a
    truncated tail shows here even when the tree was left as it was."""
    if size == 0:
        return
    row = await db.fetch_one(QUERIES["tree_leaf_event"], (size - 1,))
    if row is None:
        raise TreeBroken(f"the tree lacks leaf {size - 1}, which a signed checkpoint covers")
    position, event_hash = row
    if event_hash is None:
        raise TreeBroken(
            f"the event at position {position}, covered by a signed checkpoint, is gone",
            int(position),
        )
