"""Every tampering an auditor fears is caught: by `verify` (chains, tree and
checkpoints against the events) and by the evidence of the order concerned
(refused when built, or rejected by the offline check). The tampering is done
as the database superuser, with the ledger's append-only triggers disabled."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events import merkle
from events.appender import write
from events.chain import GENESIS, event_hash
from events.checkpoint_log import sign_checkpoint
from events.checkpoint_note import Checkpoint, verifier_key, verify
from events.connector import Database
from events.errors import ChainBroken, TreeBroken
from events.evidence import build_evidence
from events.evidence_check import EvidenceRejected, check_evidence
from events.store import read_after, read_stream, verify_chains
from events.tree import TreeConsumer, consistency_proof, tree_head, tree_size
from events.tree_check import verify_tree
from hookledger.checkpoint_key import LocalSigner
from tests.factories import new_event

ORIGIN = "test.example/ledger"
SIGNER = LocalSigner(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
KEY = (ORIGIN, SIGNER.public_key)
VERIFIER = verifier_key(ORIGIN, SIGNER.public_key)
ORDERS = ["t1", "t2", "t3"]


async def grow_tree(db: Database) -> None:
    """What the tree consumer does, to the ledger's head."""
    size = await tree_size(db)
    row = await db.fetch_one("SELECT coalesce(max(position), 0) FROM tree_leaves")
    events = await read_after(db, int(row[0]) if row else 0, 100_000)
    assert size >= 0
    if events:
        async with db.transaction() as session:
            await TreeConsumer().apply(session, events)


async def ledger(db: Database) -> Checkpoint:
    """Three orders of four events each, interleaved, in the tree, signed."""
    for step in range(4):
        await write(db, [new_event(stream=f"order-{o}", body={"o": o, "step": step, "f": 0.5})
                         for o in ORDERS])  # fmt: skip
    await grow_tree(db)
    signed, _ = await sign_checkpoint(db, SIGNER, ORIGIN)
    return verify(signed.note, ORIGIN, SIGNER.public_key)


async def tamper(db: Database, *statements: str) -> None:
    async with db.transaction() as session:
        await session.execute("ALTER TABLE events DISABLE TRIGGER USER")
        await session.execute("ALTER TABLE streams DISABLE TRIGGER USER")
        for statement in statements:
            await session.execute(statement)
        await session.execute("ALTER TABLE events ENABLE TRIGGER USER")
        await session.execute("ALTER TABLE streams ENABLE TRIGGER USER")


async def evidence_fails(db: Database, order: str) -> str:
    """Why the order's evidence fails: refused when built, or rejected offline."""
    latest = await db.fetch_one("SELECT max(size) FROM tree_checkpoints")
    signed, _ = await sign_checkpoint(db, SIGNER, ORIGIN, int(latest[0]) if latest else None)
    try:
        document = await build_evidence(db, f"order-{order}", signed, VERIFIER)
    except TreeBroken as exc:
        return f"refused: {exc.detail}"
    assert document is not None
    document = json.loads(json.dumps(document))  # as a file holds it
    with pytest.raises(EvidenceRejected) as caught:
        check_evidence(document, KEY)
    return f"rejected: {caught.value}"


async def verify_fails(db: Database, kept: list[Checkpoint] | None = None) -> str:
    try:
        await verify_chains(db)
    except ChainBroken as exc:
        return f"chain: {exc}"
    with pytest.raises(TreeBroken) as caught:
        await verify_tree(db, KEY, kept)
    return f"tree: {caught.value}"


async def position_of(db: Database, order: str, version: int) -> int:
    row = await db.fetch_one(
        "SELECT position FROM events WHERE stream = %s AND stream_version = %s",
        (f"order-{order}", version),
    )
    assert row is not None
    return int(row[0])


async def test_an_untouched_ledger_verifies_and_its_evidence_checks(db: Database) -> None:
    kept = await ledger(db)
    await verify_chains(db)
    report = await verify_tree(db, KEY, [kept])
    assert report.events == 12 and report.checkpoints == 2
    signed, _ = await sign_checkpoint(db, SIGNER, ORIGIN)
    document = await build_evidence(db, "order-t2", signed, VERIFIER)
    assert check_evidence(json.loads(json.dumps(document)), KEY).events == 4


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", """jsonb_set(payload, '{o}', '"forged"')"""),
        ("metadata", """'{"correlation_id": "forged"}'::jsonb"""),
        ("raw", "convert_to('{\"o\": \"forged\"}', 'UTF8')"),
        ("type", "'order.refunded'"),
        ("recorded_at", "recorded_at - interval '1 second'"),
        ("event_id", "'forged'"),
    ],
)
async def test_a_changed_column_is_caught(db: Database, column: str, value: str) -> None:
    await ledger(db)
    target = await position_of(db, "t2", 2)
    await tamper(db, f"UPDATE events SET {column} = {value} WHERE position = {target}")
    assert "order-t2" in await verify_fails(db)
    assert await evidence_fails(db, "t2")


async def test_two_events_swapped_are_caught(db: Database) -> None:
    await ledger(db)
    a, b = await position_of(db, "t1", 2), await position_of(db, "t1", 3)
    await tamper(
        db,
        f"UPDATE events SET stream_version = stream_version + 1000 WHERE position IN ({a}, {b})",
        f"UPDATE events SET stream_version = 3 WHERE position = {a}",
        f"UPDATE events SET stream_version = 2 WHERE position = {b}",
    )
    assert "order-t1" in await verify_fails(db)
    assert await evidence_fails(db, "t1")


async def test_an_event_deleted_from_the_middle_of_a_stream_is_caught(db: Database) -> None:
    await ledger(db)
    target = await position_of(db, "t3", 2)
    await tamper(db, f"DELETE FROM events WHERE position = {target}")
    assert "order-t3" in await verify_fails(db)
    assert await evidence_fails(db, "t3")


async def test_a_truncated_tail_is_caught_even_with_the_heads_mended(db: Database) -> None:
    kept = await ledger(db)
    # The newest event of every order goes, and each stream's head is set back.
    await tamper(
        db,
        "DELETE FROM events WHERE stream_version = 4",
        "UPDATE streams SET version = 3, last_hash = e.hash FROM events AS e "
        "WHERE e.stream = streams.stream AND e.stream_version = 3",
    )
    await verify_chains(db)  # every chain is whole: only history shows the cut
    assert "removed" in await verify_fails(db)
    assert "gone" in await evidence_fails(db, "t1")
    # Even with the tree and the recorded checkpoints cut too, a kept one shows it.
    async with db.transaction() as session:
        await session.execute("DELETE FROM tree_checkpoints")
        await session.execute("DELETE FROM tree_nodes")
        await session.execute("DELETE FROM tree_leaves")
    await grow_tree(db)
    assert "covers 12 events but the ledger has 9" in await verify_fails(db, [kept])


async def rewrite_stream(db: Database, order: str) -> None:
    """Change an event's body and recompute the stream with the documented rule,
    as someone who can write the database but holds no key would."""
    events = await read_stream(db, f"order-{order}")
    prev = GENESIS
    statements = []
    for event in events:
        raw = event.raw if event.stream_version != 2 else b'{"o": "rewritten"}'
        digest = event_hash(
            prev_hash=prev, stream=event.stream, stream_version=event.stream_version,
            provider=event.provider, event_id=event.event_id, type=event.type,
            occurred_at=event.occurred_at, recorded_at=event.recorded_at,
            raw_sha256=hashlib.sha256(raw).hexdigest(), metadata=event.metadata,
        )  # fmt: skip
        statements.append(
            f"UPDATE events SET raw = '\\x{raw.hex()}'::bytea, payload = '{raw.decode()}'::jsonb,"
            f" prev_hash = '{prev}', hash = '{digest}' WHERE position = {event.position}"
        )
        prev = digest
    statements.append(f"UPDATE streams SET last_hash = '{prev}' WHERE stream = 'order-{order}'")
    await tamper(db, *statements)


async def test_a_stream_rewritten_consistently_is_caught_by_the_tree(db: Database) -> None:
    await ledger(db)
    await rewrite_stream(db, "t2")
    await verify_chains(db)  # the chain alone cannot tell
    first = await position_of(db, "t2", 2)
    failure = await verify_fails(db)
    assert f"position {first}" in failure
    assert "refused" in await evidence_fails(db, "t2")


async def test_a_rewrite_with_the_tree_rebuilt_is_caught_by_the_signed_checkpoint(
    db: Database,
) -> None:
    await ledger(db)
    await rewrite_stream(db, "t2")
    async with db.transaction() as session:
        await session.execute("DELETE FROM tree_nodes")
        await session.execute("DELETE FROM tree_leaves")
    await grow_tree(db)
    assert "signed checkpoint of size 12 does not match" in await verify_fails(db)
    # Evidence against the signed checkpoint: the rebuilt tree's proofs fail it.
    assert "not included" in await evidence_fails(db, "t2")


async def test_a_forked_history_is_caught_by_a_checkpoint_kept_from_before(
    db: Database,
) -> None:
    # The operator holds the key: they rewrite, rebuild the tree and sign anew.
    kept = await ledger(db)
    await rewrite_stream(db, "t2")
    async with db.transaction() as session:
        for table in ("tree_checkpoints", "tree_nodes", "tree_leaves"):
            await session.execute(f"DELETE FROM {table}")
    await grow_tree(db)
    await sign_checkpoint(db, SIGNER, ORIGIN)
    await write(db, [new_event(stream="order-t4")])
    await grow_tree(db)
    new, _ = await sign_checkpoint(db, SIGNER, ORIGIN)
    await verify_tree(db, KEY)  # consistent with itself
    assert "kept checkpoint of size 12 does not match" in await verify_fails(db, [kept])
    # And no consistency proof from the kept checkpoint to the new one holds.
    proof = await consistency_proof(db, kept.size, new.size)
    assert not merkle.verify_consistency(kept.size, new.size, kept.root, new.root, proof)
    assert await tree_head(db, kept.size) != kept.root
