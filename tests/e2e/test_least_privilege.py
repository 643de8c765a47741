"""A service whose login is only a member of hookledger_writer (as on Cloud SQL,
where the migration job runs as the owner) starts and records webhooks."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tests.countdown_helpers import now_order
from tests.e2e_helpers import run_cli, send_post_purchase
from tests.support import ServerProcess


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 5432}"))


def test_a_login_that_may_only_write_events_serves_on_a_migrated_database(
    database_url: str,
) -> None:
    login = f"hl_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN IN ROLE hookledger_writer")
    try:
        server = ServerProcess(as_user(database_url, login)).start()
        try:
            answer = send_post_purchase(server.url, now_order(f"lp-{uuid.uuid4().hex[:6]}"))
            assert answer.status_code == 200, answer.text
        finally:
            server.stop()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {login}")


def test_tables_a_replay_swaps_in_keep_the_service_role_s_rights(database_url: str) -> None:
    login = f"hl_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN IN ROLE hookledger_writer")
    try:
        replayed = run_cli(database_url, "replay", "--all")
        assert replayed.returncode == 0, replayed.stderr
        with psycopg.connect(as_user(database_url, login)) as conn:
            for table in ("orders", "verifications", "countdowns", "countdown_timers"):
                # DELETE needs the grant even when it deletes nothing.
                conn.execute(sql.SQL("DELETE FROM {} WHERE false").format(sql.Identifier(table)))
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {login}")
