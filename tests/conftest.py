"""A real Postgres for every test: HOOKLEDGER_TEST_DATABASE_URL, else an embedded
one for the session. Each test gets a fresh database cloned from a migrated
template, so tests never see each other's events.

Tests live in three tiers, one folder each, and carry the tier's marker (set
here from the folder): ``unit`` (no database, no processes), ``integration`` (a
database) and ``e2e`` (real servers, CLI processes against them, emulators).
``pytest -m unit`` runs one tier."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from events.connector import Database
from hookledger.migrations import migrate
from tests.support import ServerProcess, admin_execute, with_database

# The BigQuery emulator's fixtures, for the export tests of every tier.
pytest_plugins = ["tests.exporter.fixtures"]

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the tier its folder names."""
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        if parts[0] not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: not in tests/unit, integration or e2e")
        item.add_marker(parts[0])


# CI replays the same examples on every run, so a red build is reproducible; local
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The URL of a database on the test server (its own maintenance database)."""
    configured = os.environ.get("HOOKLEDGER_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from hookledger.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="hookledger-test-")))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    name = f"hl_template_{os.getpid()}"
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name}")
    admin_execute(server_url, f"CREATE DATABASE {name}")

    async def run() -> None:
        db = Database(with_database(server_url, name), max_size=1)
        await db.open()
        try:
            await migrate(db)
        finally:
            await db.close()

    asyncio.run(run())
    yield name
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(server_url: str, template_name: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"hl_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f"CREATE DATABASE {name} TEMPLATE {template_name} STRATEGY FILE_COPY")
    yield with_database(server_url, name)
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, max_size=4)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def server(database_url: str) -> Iterator[ServerProcess]:
    """The real service on a free port, over a fresh database."""
    process = ServerProcess(database_url).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shared_database_url(server_url: str, template_name: str) -> Iterator[str]:
    """One migrated database per test module, for tests that only check what is refused
    or that use ids of their own."""
    name = f"hl_shared_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f"CREATE DATABASE {name} TEMPLATE {template_name} STRATEGY FILE_COPY")
    yield with_database(server_url, name)
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def shared_server(shared_database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(shared_database_url).start()
    yield process
    process.stop()
