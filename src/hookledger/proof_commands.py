"""The auditor's commands behind ``hookledger checkpoint``, ``evidence``,
``verify-evidence`` and ``verify``'s tree check: each prints what it found and
returns the exit status (0 ok, 1 a check failed, 2 it could not run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from events.checkpoint_log import latest_checkpoint
from events.checkpoint_note import Checkpoint, fingerprint, parse_verifier_key, verify
from events.connector import Database
from events.errors import HookledgerError, TreeBehind, TreeBroken
from events.evidence import build_evidence
from events.evidence_check import EvidenceRejected, check_evidence
from events.model import ORDER_STREAM_PREFIX
from events.tree_check import verify_tree
from hookledger.checkpointer import Checkpointer
from hookledger.settings import Settings

Key = tuple[str, Ed25519PublicKey]


def read_key(text: str) -> Key:
    """A verifier key (``name+hash+base64``) given as such or as a file holding one."""
    candidate = text
    path = Path(text)
    if "+" not in text or path.is_file():
        try:
            candidate = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the key file {text}: {exc.strerror}") from None
    return parse_verifier_key(candidate)


async def checkpoint(db: Database, settings: Settings, *, show_key: bool) -> int:
    """Sign the tree now (if it grew) and print the checkpoint, or the key."""
    checkpointer = Checkpointer(db, settings)
    key = await checkpointer.verifier_key()
    if key is None:
        print("hookledger: no checkpoint key: set HOOKLEDGER_CHECKPOINT_KEY", file=sys.stderr)
        return 2
    name, public_key = parse_verifier_key(key)
    if show_key:
        pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        print(f"name: {name}\nverifier key: {key}\nfingerprint: {fingerprint(public_key)}")
        print(pem, end="")
        return 0
    signed = await checkpointer.checkpoint()
    assert signed is not None
    sys.stdout.write(signed.note)
    return 0


async def evidence(db: Database, settings: Settings, order_id: str) -> tuple[int, dict[str, Any]]:
    """An order's evidence document, or the exit status that says why none."""
    checkpointer = Checkpointer(db, settings)
    key = await checkpointer.verifier_key()
    if key is None:
        print("hookledger: no checkpoint key: set HOOKLEDGER_CHECKPOINT_KEY", file=sys.stderr)
        return 2, {}
    stream = ORDER_STREAM_PREFIX + order_id
    try:
        signed = await latest_checkpoint(db)
        if signed is None or signed.size == 0:
            signed = await checkpointer.checkpoint()
        assert signed is not None
        try:
            document = await build_evidence(db, stream, signed, key)
        except TreeBehind:
            signed = await checkpointer.checkpoint()
            assert signed is not None
            document = await build_evidence(db, stream, signed, key)
    except TreeBroken as exc:
        print(f"BROKEN: {exc.detail}")
        return 1, {}
    except TreeBehind as exc:
        print(f"hookledger: {exc.detail}", file=sys.stderr)
        return 2, {}
    if document is None:
        print(f"hookledger: no events for order {order_id!r}", file=sys.stderr)
        return 1, {}
    return 0, document


def write_evidence(document: dict[str, Any], output: Path | None) -> None:
    """Print the evidence, or write it to ``output`` and say so."""
    text = json.dumps(document, indent=1)
    if output is None:
        print(text)
        return
    output.write_text(text + "\n")
    events = len(document["events"])
    print(f"wrote {output}: {events} event{'s' if events != 1 else ''} of {document['stream']}")


def verify_evidence(path: Path, key_text: str | None) -> int:
    """Check an evidence file with no database."""
    try:
        document: Any = json.loads(path.read_text())
    except OSError as exc:
        print(f"hookledger: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"REJECTED: {path} is not JSON: {exc}")
        return 1
    try:
        key = read_key(key_text) if key_text else None
    except ValueError as exc:
        print(f"hookledger: --key: {exc}", file=sys.stderr)
        return 2
    try:
        report = check_evidence(document, key)
    except EvidenceRejected as exc:
        print(f"REJECTED: {exc}")
        return 1
    point = report.checkpoint
    print(f"ok: {report.events} event{'s' if report.events != 1 else ''} of {report.stream} "
          f"are in the tree of {point.size} signed by {point.origin} "
          f"(key {report.key_fingerprint[:16]}...)")  # fmt: skip
    if report.key_from_file:
        print("note: checked against the key the file names; pass --key with the key you "
              "hold to know it is the service's")  # fmt: skip
    return 0


def read_kept(path: Path | None) -> str | None:
    """The text of a checkpoint an auditor kept (None without a path); OSError."""
    return None if path is None else path.read_text()


async def verify_history(
    db: Database, settings: Settings, kept: tuple[Path, str] | None, key_text: str | None
) -> int:
    """The tree and the checkpoints against the events; 0 when they agree."""
    try:
        key = read_key(key_text) if key_text else await _configured_key(db, settings)
    except (ValueError, HookledgerError) as exc:
        print(f"hookledger: checkpoint key: {exc}", file=sys.stderr)
        return 2
    claims: list[Checkpoint] = []
    if kept is not None:
        if key is None:
            print("hookledger: --checkpoint needs a key (--key or HOOKLEDGER_CHECKPOINT_KEY)",
                  file=sys.stderr)  # fmt: skip
            return 2
        try:
            claims.append(verify(kept[1], key[0], key[1]))
        except ValueError as exc:
            print(f"BROKEN: {kept[0]}: {exc}")
            return 1
    try:
        report = await verify_tree(db, key, claims)
    except TreeBroken as exc:
        where = f" (first position: {exc.position})" if exc.position else ""
        print(f"BROKEN: {exc.reason}{where}")
        return 1
    line = (f"ok: the tree of {report.events} events matches the stored tree and "
            f"{report.checkpoints} checkpoint{'s' if report.checkpoints != 1 else ''}")  # fmt: skip
    if report.unchecked_signatures and key is None:
        line += " (their signatures not checked: no key; pass --key)"
    elif report.unchecked_signatures:
        line += f" ({report.unchecked_signatures} signed by another key: signatures not checked)"
    print(line)
    return 0


async def _configured_key(db: Database, settings: Settings) -> Key | None:
    text = await Checkpointer(db, settings).verifier_key()
    return parse_verifier_key(text) if text else None


async def verify_signatures(db: Database, settings: Settings) -> int:
    """Every stored delivery's signature, with the secrets configured now."""
    from hookledger.secrets import SecretStore
    from hookledger.signature_audit import audit_signatures
    from hookledger.wiring import build_providers

    providers = build_providers(settings, SecretStore.from_settings(settings))
    report = await audit_signatures(db, providers)
    for failure in report.failed:
        print(f"BROKEN: stream {failure.stream} at version {failure.version} (position "
              f"{failure.position}, {failure.provider}): signature: {failure.reason}")  # fmt: skip
    line = f"signatures: {report.verified} verify, {len(report.failed)} fail"
    if report.erased:
        line += f", {report.erased} not checkable (a personal value erased)"
    if report.unverifiable:
        count = sum(report.unverifiable.values())
        line += f", {count} unverifiable (no secret for: {', '.join(sorted(report.unverifiable))})"
    print(line)
    return 1 if report.failed else 0
