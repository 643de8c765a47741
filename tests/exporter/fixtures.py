"""Fixtures of the exporter's tests: the BigQuery emulator for the session, a
dataset of each test's own, a policy with a known key."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import bigquery

from exporter.bigquery import BigQueryConfig, make_client
from exporter.policy import Policy, load_rules
from tests.exporter.emulator import BigQueryEmulator

HASH_KEY = b"test-export-hash-key"


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[BigQueryEmulator]:
    with tempfile.TemporaryDirectory(prefix="hookledger-bqemulator-") as workdir:
        emulator = BigQueryEmulator(Path(workdir)).start()
        try:
            yield emulator
        finally:
            emulator.stop()


@pytest.fixture
def bigquery_config(bigquery_emulator: BigQueryEmulator) -> BigQueryConfig:
    """A dataset of this test's own on the emulator (made by the exporter)."""
    return BigQueryConfig(
        project=bigquery_emulator.project,
        dataset=f"t_{uuid.uuid4().hex[:10]}",
        endpoint=bigquery_emulator.endpoint,
        timeout=10.0,
    )


@pytest.fixture
def bigquery_client(bigquery_config: BigQueryConfig) -> bigquery.Client:
    return make_client(bigquery_config)


@pytest.fixture
def policy() -> Policy:
    """The default policy, with the tests' key."""
    return Policy(load_rules(), HASH_KEY)
