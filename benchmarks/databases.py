"""Scratch databases on the local Postgres server the benchmarks run against."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "hl_bench_"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_url(url: str) -> str:
    """The given URL, or its server's ``postgres`` database when it names none."""
    return url if urlsplit(url).path.strip("/") else with_database(url, "postgres")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty database beside ``server_url``'s, dropped afterwards."""
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def postgres_context(url: str) -> str:
    """The server's version and the settings that decide what a commit costs."""
    with psycopg.connect(url) as conn:
        values = [
            str(row[0]) if (row := conn.execute(query).fetchone()) else "?"
            for query in ("SHOW server_version", "SHOW synchronous_commit", "SHOW fsync")
        ]
    return f"Postgres {values[0]} (synchronous_commit={values[1]}, fsync={values[2]})"


def backend_pids(url: str) -> list[int]:
    """The Postgres backends serving this database, other than the one asking."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]
