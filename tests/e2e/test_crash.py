"""SIGKILL in the middle of a delivery storm: what was acknowledged survives,
once, with the background work (the Merkle tree and signed checkpoints among
it) running; afterwards the tree and every checkpoint agree with the ledger."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import httpx
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from events.connector import Database
from events.store import verify_chains
from events.tree_check import verify_tree
from tests.e2e_helpers import POST_PURCHASE_PATH, order_body, signed_whole_ledger, wait_for
from tests.support import ServerProcess, post_purchase_headers

KEY = Ed25519PrivateKey.generate()
ORIGIN = "crash.example/log"
CHECKPOINTING = {
    "HOOKLEDGER_BACKGROUND": "true",
    "HOOKLEDGER_CHECKPOINT_KEY": KEY.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    ).decode(),
    "HOOKLEDGER_CHECKPOINT_ORIGIN": ORIGIN,
    "HOOKLEDGER_CHECKPOINT_INTERVAL": "1s",
}
DELIVERIES = 2000
SENDERS = 16
ORDERS = 40
KILL_AFTER_ACKS = DELIVERIES // 3
GIVE_UP_AFTER = 90.0


@dataclass
class Tally:
    acked: dict[str, int] = field(default_factory=dict)
    """msg id -> the position the service answered."""
    recorded: int = 0
    idempotent: int = 0
    conflicts: int = 0
    retries: int = 0
    transport_errors: int = 0
    server_errors: int = 0
    unacked: list[str] = field(default_factory=list)
    enough_acked: asyncio.Event = field(default_factory=asyncio.Event)


async def deliver(
    client: httpx.AsyncClient, url: str, msg_id: str, raw: bytes, tally: Tally, deadline: float
) -> None:
    """Like a provider: retry on connection errors and 5xx until a 2xx, within a deadline.

    Each attempt is signed afresh (a new webhook-timestamp), the id and bytes stay.
    """
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            response = await client.post(
                url, content=raw, headers=post_purchase_headers(raw, msg_id)
            )
        except httpx.TransportError:
            tally.transport_errors += 1
        else:
            if response.is_success:
                answer = response.json()
                tally.acked[msg_id] = answer["position"]
                if len(tally.acked) >= KILL_AFTER_ACKS:
                    tally.enough_acked.set()
                if answer.get("conflict"):
                    tally.conflicts += 1
                elif answer.get("idempotent"):
                    tally.idempotent += 1
                else:
                    tally.recorded += 1
                return
            assert response.status_code >= 500, response.text
            tally.server_errors += 1
        tally.retries += 1
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)
    tally.unacked.append(msg_id)


async def test_every_acknowledged_webhook_survives_a_sigkill_exactly_once(
    database_url: str,
) -> None:
    server = await asyncio.to_thread(ServerProcess(database_url, env=CHECKPOINTING).start)
    port = server.port
    url = server.url + POST_PURCHASE_PATH
    deliveries = {
        f"msg_crash_{i:05d}": json.dumps(order_body(f"c{i % ORDERS}", seq=i)).encode()
        for i in range(DELIVERIES)
    }
    queue: asyncio.Queue[str] = asyncio.Queue()
    for msg_id in deliveries:
        queue.put_nowait(msg_id)
    tally = Tally()
    deadline = time.monotonic() + GIVE_UP_AFTER
    acked_before_kill = -1

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            msg_id = queue.get_nowait()
            await deliver(client, url, msg_id, deliveries[msg_id], tally, deadline)

    async def killer() -> None:
        nonlocal acked_before_kill
        await asyncio.wait_for(tally.enough_acked.wait(), GIVE_UP_AFTER)
        acked_before_kill = len(tally.acked)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.start)

    try:
        limits = httpx.Limits(max_connections=SENDERS)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            await asyncio.gather(killer(), *(sender(client) for _ in range(SENDERS)))
        assert server.port == port, "the restarted server must listen on the same port"
        # The tree catches up and a checkpoint covers the whole ledger.
        assert await asyncio.to_thread(wait_for, lambda: signed_whole_ledger(database_url), 30)
    finally:
        await asyncio.to_thread(server.stop)

    # The kill really happened in the middle of the storm.
    assert 0 < acked_before_kill < DELIVERIES
    assert tally.transport_errors + tally.server_errors > 0
    assert tally.unacked == [], f"{len(tally.unacked)} deliveries never acknowledged"
    assert tally.conflicts == 0
    assert len(tally.acked) == DELIVERIES

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id, position FROM events WHERE provider = 'post-purchase'"
        ).fetchall()
        total = conn.execute("SELECT count(*) FROM events").fetchone()
    stored: dict[str, int] = dict(rows)
    assert len(rows) == len(deliveries)
    assert set(stored) == set(deliveries)
    # Every acknowledgement named the position the event really has.
    mismatched = {m: (p, stored[m]) for m, p in tally.acked.items() if stored[m] != p}
    assert mismatched == {}

    db = Database(database_url, max_size=2)
    await db.open()
    try:
        report = await verify_chains(db)
        history = await verify_tree(db, (ORIGIN, KEY.public_key()))
    finally:
        await db.close()
    # The orders' streams hold the deliveries and the countdowns' own decisions.
    assert total is not None and report.streams == ORDERS and report.events == total[0]
    assert history.events == history.tree_leaves == total[0]
    assert history.checkpoints >= 1 and history.unchecked_signatures == 0
