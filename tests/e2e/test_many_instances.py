"""Many instances on one database, as on Cloud Run: three `hookledger serve`
(HTTP only) and two `hookledger worker`, webhooks sent to all of them, one of
each killed (SIGKILL) mid-way. Every acknowledged webhook is recorded once,
every countdown ends once, the projections equal a rebuild, and the Merkle tree
and the checkpoints the workers signed agree with the ledger."""

from __future__ import annotations

import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg

from hookledger.checkpoint_key import new_private_pem
from tests.countdown_helpers import HEADSTART, WINDOW_ENV, now_order
from tests.e2e_helpers import (
    decision_body,
    run_cli,
    send_post_purchase,
    send_veriff,
    signed_whole_ledger,
    wait_for,
)
from tests.integration.test_projections import TABLES
from tests.support import ServerProcess, WorkerProcess

KEY_PEM = new_private_pem()
ENV = {**WINDOW_ENV, "HOOKLEDGER_CHECKPOINT_KEY": KEY_PEM, "HOOKLEDGER_CHECKPOINT_INTERVAL": "1s"}
ORDERS = 40
# Every fourth order is approved in time: its countdown is satisfied, not expired.
APPROVED_EVERY = 4


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {name: sorted(conn.execute(query).fetchall())
                for name, query in TABLES.items()}  # fmt: skip


def closings(database_url: str) -> dict[str, list[str]]:
    """Each order's countdown outcomes (satisfied, expired, cancelled) in the ledger."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT stream, type FROM events WHERE provider = 'hookledger' "
            "AND event_id LIKE 'countdown.closed:%'"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for stream, kind in rows:
        found.setdefault(stream.removeprefix("order-"), []).append(kind)
    return found


def caught_up(database_url: str) -> bool:
    """Every consumer's checkpoint at the ledger's head."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), "
            "(SELECT min(position) FROM checkpoints)"
        ).fetchone()
    return row is not None and row[1] is not None and row[0] == row[1]


def test_three_servers_and_two_workers_with_one_of_each_killed_lose_and_double_nothing(
    database_url: str,
) -> None:
    servers = [
        ServerProcess(database_url, env=ENV, args=["--no-workers"]).start() for _ in range(3)
    ]
    workers = [WorkerProcess(database_url, env=ENV).start() for _ in range(2)]
    orders = [f"m-{uuid.uuid4().hex[:8]}" for _ in range(ORDERS)]
    approved = set(orders[::APPROVED_EVERY])
    acknowledged: dict[str, str] = {}  # webhook-id -> order
    live = list(servers)
    turn = itertools.count()

    def deliver(order: str) -> None:
        """Like a provider: resend to another instance until one acknowledges."""
        msg_id = f"msg_{uuid.uuid4().hex}"
        for _ in range(6):
            server = live[next(turn) % len(live)]
            try:
                ahead = HEADSTART if order in approved else 0.0
                answer = send_post_purchase(server.url, now_order(order, ahead), msg_id=msg_id)
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                acknowledged[msg_id] = order
                if order in approved:
                    assert send_veriff(server.url, decision_body(order)).status_code == 200
                return
        raise AssertionError(f"no instance took order {order}")

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(deliver, orders[: ORDERS // 2]))
            servers[0].kill()
            workers[0].kill()
            live.remove(servers[0])
            list(pool.map(deliver, orders[ORDERS // 2 :]))
        assert wait_for(lambda: len(closings(database_url)) == ORDERS, 30), closings(database_url)
        assert wait_for(lambda: caught_up(database_url), 15)
        assert wait_for(lambda: signed_whole_ledger(database_url), 15)
    finally:
        for server in servers:
            server.stop()
        for worker in workers:
            worker.stop()

    with psycopg.connect(database_url) as conn:
        recorded = conn.execute(
            "SELECT event_id, stream FROM events WHERE provider = 'post-purchase'"
        ).fetchall()
    assert sorted(recorded) == sorted((m, f"order-{o}") for m, o in acknowledged.items())
    assert sorted(acknowledged.values()) == sorted(orders)
    outcomes = closings(database_url)
    for order in orders:
        expected = "countdown.satisfied" if order in approved else "countdown.expired"
        assert outcomes[order] == [expected], order

    checked = run_cli(database_url, "verify", env={"HOOKLEDGER_CHECKPOINT_KEY": KEY_PEM})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "matches the stored tree" in checked.stdout

    before = snapshot(database_url)
    rebuilt = run_cli(database_url, "replay", "--all")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert snapshot(database_url) == before
