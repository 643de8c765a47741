"""Check an evidence file (``events.evidence``) with no service and no database:
the checkpoint's signature, every event's hash chain and payload, and every
event's inclusion in the signed tree."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events import merkle
from events.chain import (
    GENESIS,
    RULES,
    canonical_entries,
    chained_entries,
    event_hash,
    payload_matches,
    personal_problem,
)
from events.checkpoint_note import Checkpoint, fingerprint, parse_verifier_key, verify
from events.evidence import FORMAT


class EvidenceRejected(ValueError):
    """What in an evidence file does not hold, named."""


class EvidenceReport(msgspec.Struct, frozen=True):
    stream: str
    events: int
    checkpoint: Checkpoint
    key_fingerprint: str
    key_from_file: bool


def check_evidence(
    document: Any, key: tuple[str, Ed25519PublicKey] | None = None
) -> EvidenceReport:
    """Check ``document`` (the parsed file); with ``key`` (name, public key) the
    checkpoint must be signed by that key, otherwise by the key the file names.
    Raises EvidenceRejected naming the first thing that fails."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EvidenceRejected(f"not a hookledger evidence file (format {FORMAT!r} expected)")
    from_file = key is None
    try:
        name, public_key = key or parse_verifier_key(str(document.get("verifier_key", "")))
    except ValueError as exc:
        raise EvidenceRejected(f"verifier_key: {exc}") from None
    if fingerprint(public_key) != document.get("key_fingerprint"):
        raise EvidenceRejected(
            "the checkpoint's key is not the one whose fingerprint the file names"
        )
    try:
        checkpoint = verify(str(document.get("checkpoint", "")), name, public_key)
    except ValueError as exc:
        raise EvidenceRejected(f"checkpoint: {exc}") from None
    stream = document.get("stream")
    events = document.get("events")
    if not isinstance(stream, str) or not isinstance(events, list) or not events:
        raise EvidenceRejected("the file names no stream or holds no events")
    prev, rule, last_index = GENESIS, 1, -1
    for version, event in enumerate(events, start=1):
        where = f"{stream} version {version}"
        try:
            prev, rule, last_index = _check_event(event, stream, version, prev, rule,
                                                  last_index, checkpoint)  # fmt: skip
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            if isinstance(exc, EvidenceRejected):
                raise EvidenceRejected(f"{where}: {exc}") from None
            raise EvidenceRejected(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
    return EvidenceReport(stream, len(events), checkpoint, fingerprint(public_key), from_file)


def _check_event(
    event: dict[str, Any],
    stream: str,
    version: int,
    prev: str,
    rule: int,
    last_index: int,
    checkpoint: Checkpoint,
) -> tuple[str, int, int]:
    if event["stream"] != stream or event["version"] != version:
        raise EvidenceRejected(f"found {event['stream']!r} version {event['version']}")
    if event["prev_hash"] != prev:
        raise EvidenceRejected("prev_hash is not the previous event's hash")
    this_rule = event["hash_rule"]
    if this_rule not in RULES or this_rule < rule:
        raise EvidenceRejected(f"hash rule {this_rule} after rule {rule}")
    raw = base64.b64decode(event["raw_base64"], validate=True)
    occurred = event["occurred_at"]
    digest = event_hash(
        prev_hash=prev,
        stream=stream,
        stream_version=version,
        provider=event["provider"],
        event_id=event["event_id"],
        type=event["type"],
        occurred_at=_time(occurred) if occurred is not None else None,
        recorded_at=_time(event["recorded_at"]),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        metadata=event["metadata"],
        rule=this_rule,
        personal=canonical_entries(chained_entries(event.get("personal") or [])),
    )
    if digest != event["hash"]:
        raise EvidenceRejected("the hash does not match the event's contents")
    entries = event.get("personal") or []
    if entries:
        held = {
            n: (base64.b64decode(e["salt_base64"], validate=True),
                base64.b64decode(e["value_base64"], validate=True))
            for n, e in enumerate(entries) if e.get("state") == "held"
        }  # fmt: skip
        problem = personal_problem(raw, entries, held, event["payload"])
        if problem is not None:
            raise EvidenceRejected(problem)
    elif not payload_matches(raw, event["payload"]):
        raise EvidenceRejected("the payload is not the JSON value of the raw body")
    index = event["leaf_index"]
    if not isinstance(index, int) or index <= last_index:
        raise EvidenceRejected("leaf_index does not follow the previous event's")
    proof = [base64.b64decode(p, validate=True) for p in event["inclusion_proof"]]
    leaf = merkle.leaf_hash(bytes.fromhex(event["hash"]))
    if not merkle.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root):
        raise EvidenceRejected(
            f"not included at leaf {index} in the signed tree of {checkpoint.size} events"
        )
    return event["hash"], this_rule, index


def _time(text: str) -> datetime:
    # The documented form only: 2024-05-01T12:30:00.123456Z.
    if not isinstance(text, str) or len(text) != 27 or not text.endswith("Z"):
        raise EvidenceRejected(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return datetime.fromisoformat(text[:-1] + "+00:00")
