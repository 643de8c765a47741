"""The CLI on the embedded default, as a new user runs it: one database whichever
folder a command runs in, made only by `serve` and `migrate`, and no Python
warning in normal use, even where XDG_RUNTIME_DIR is unset (root shells,
containers, cron)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """No database URL, no HOOKLEDGER_DATA_DIR, no XDG_RUNTIME_DIR; the user's
    data folder (XDG_DATA_HOME) is the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLEDGER_")}
    env.pop("XDG_RUNTIME_DIR", None)
    env["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("user-data"))
    yield env


def data_folder(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "hookledger"


def hookledger(
    env: dict[str, str], *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookledger.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_commands_on_the_embedded_database_print_no_python_warning(
    embedded_env: dict[str, str],
) -> None:
    migrated = hookledger(embedded_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    verified = hookledger(embedded_env, "verify")
    assert verified.returncode == 0, verified.stderr
    for done in (migrated, verified):
        assert "Warning" not in done.stderr, done.stderr


def test_a_read_where_no_database_exists_says_where_it_looked_and_makes_nothing(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLEDGER_")}
    env["HOOKLEDGER_DATA_DIR"] = str(tmp_path / "nothing-here")
    for args in (["history", "1001"], ["verify"], ["status", "1001"],
                 ["send", "veriff", "verification.approved"], ["secret", "veriff"]):  # fmt: skip
        done = hookledger(env, *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert str(tmp_path / "nothing-here") in done.stderr
        assert "HOOKLEDGER_DATA_DIR" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_every_folder_reaches_the_one_database_that_migrate_made(
    embedded_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    made = hookledger(embedded_env, "migrate", cwd=tmp_path_factory.mktemp("one"))
    assert made.returncode == 0, made.stderr
    assert (data_folder(embedded_env) / "pg" / "PG_VERSION").is_file()
    other = tmp_path_factory.mktemp("other")
    elsewhere = hookledger(embedded_env, "verify", cwd=other)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.startswith("ok: 0 events in 0 streams")
    assert list(other.iterdir()) == []


def test_info_names_the_version_database_and_data_folder_but_no_secret(
    embedded_env: dict[str, str],
) -> None:
    env = {**embedded_env, "HOOKLEDGER_VERIFF_SECRET": "a-secret-value-9f2c"}
    done = hookledger(env, "info", "--json")
    assert done.returncode == 0, done.stderr
    assert "a-secret-value-9f2c" not in done.stdout
    info = json.loads(done.stdout)
    assert info["data folder"] == str(data_folder(embedded_env))
    assert info["database"].startswith(f"embedded Postgres in {data_folder(embedded_env)}")
    assert info["secret HOOKLEDGER_VERIFF_SECRET"] == "set"
    assert info["timer backend"] == "postgres" and info["safe mode"] == "on"
    version = hookledger(env, "--version")
    assert version.stdout.strip() == f"hookledger {info['version']}"
    remote = hookledger({**env, "HOOKLEDGER_DATABASE_URL": "postgresql://app:pw9f2c@db/x"}, "info")
    assert "pw9f2c" not in remote.stdout and "postgresql://app:***@db/x" in remote.stdout
