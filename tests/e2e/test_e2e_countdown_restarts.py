"""Countdowns across crashes and side-by-side workers: each expires exactly once."""

from __future__ import annotations

import uuid

import psycopg

from tests.countdown_helpers import WINDOW_ENV, all_due, now_order, timers_left, types_of
from tests.e2e_helpers import send_post_purchase, wait_for
from tests.support import ServerProcess, WorkerProcess


def expiries(database_url: str, orders: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT stream, count(*) FROM events WHERE type = 'countdown.expired' "
            "AND stream = ANY(%s) GROUP BY stream",
            ([f"order-{o}" for o in orders],),
        ).fetchall()
    return {stream.removeprefix("order-"): count for stream, count in rows}


def test_countdowns_due_while_the_server_is_down_expire_exactly_once_after_restart(
    database_url: str,
) -> None:
    server = ServerProcess(database_url, env=WINDOW_ENV).start()
    orders = [f"r-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    try:
        for order in orders:
            assert send_post_purchase(server.url, now_order(order)).status_code == 200
        assert wait_for(
            lambda: all("countdown.started" in types_of(database_url, o) for o in orders), 10
        )
    finally:
        server.kill()
    # Every countdown falls due while nothing runs.
    assert wait_for(lambda: all_due(database_url, orders), 10)
    restarted = ServerProcess(database_url, env=WINDOW_ENV).start()
    try:
        done = wait_for(lambda: len(expiries(database_url, orders)) == len(orders), 20)
        assert done, expiries(database_url, orders)
        # No timer left that could fire again.
        assert wait_for(lambda: timers_left(database_url, orders) == 0, 10)
    finally:
        restarted.stop()
    assert expiries(database_url, orders) == dict.fromkeys(orders, 1)


def test_two_workers_beside_a_server_expire_each_countdown_once(database_url: str) -> None:
    server = ServerProcess(database_url, env=WINDOW_ENV, args=["--no-workers"]).start()
    workers = [WorkerProcess(database_url, env=WINDOW_ENV).start() for _ in range(2)]
    orders = [f"w-{uuid.uuid4().hex[:8]}" for _ in range(30)]
    try:
        first, rest = orders[: len(orders) // 2 + 1], orders[len(orders) // 2 + 1 :]
        for order in first:
            assert send_post_purchase(server.url, now_order(order)).status_code == 200
        # The first orders fall due and expire with both workers claiming ...
        assert wait_for(lambda: len(expiries(database_url, first)) == len(first), 15)
        workers[0].kill()  # ... then one dies; the other takes over its leases
        for order in rest:
            assert send_post_purchase(server.url, now_order(order)).status_code == 200
        done = wait_for(lambda: len(expiries(database_url, orders)) == len(orders), 25)
        assert done, expiries(database_url, orders)
        assert wait_for(lambda: timers_left(database_url, orders) == 0, 10)
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
    assert expiries(database_url, orders) == dict.fromkeys(orders, 1)
    for order in orders:
        history = types_of(database_url, order)
        assert history.count("countdown.started") == 1
        assert history.count("order.cancelled") == 1
