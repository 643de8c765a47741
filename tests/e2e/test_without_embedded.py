"""An install without the ``embedded`` extra (the production image's): every
command that needs a database, given none, says what to do in one line and exits
2, without a traceback. pgserver is made unimportable by a package of the same
name placed first on the path, which raises what a missing module raises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

COMMANDS = [
    ["serve", "--port", "1"],
    ["worker"],
    ["migrate"],
    ["history", "1001"],
    ["status", "1001"],
    ["verify"],
    ["replay", "--all"],
    ["selftest"],
    ["dead-letters"],
    ["dead-letters", "retry", "refund:x"],
    ["export", "--to", "parquet", "out"],
]


@pytest.fixture(scope="module")
def no_pgserver(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment without a database URL, where ``import pgserver`` fails."""
    root = tmp_path_factory.mktemp("no-pgserver")
    shadow = root / "path" / "pgserver"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pgserver'\", name='pgserver')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLEDGER_")}
    path = [str(root / "path"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["HOOKLEDGER_DATA_DIR"] = str(root / "data")
    return env


def hookledger(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookledger.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_shadow_package_makes_pgserver_unimportable(no_pgserver: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import pgserver"],
        env=no_pgserver, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'pgserver'" in done.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_command_needing_the_embedded_database_without_pgserver_exits_2_with_one_line(
    no_pgserver: dict[str, str], args: list[str]
) -> None:
    done = hookledger(no_pgserver, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "hookledger[embedded]" in lines[0]
    assert "HOOKLEDGER_DATABASE_URL" in lines[0]
    assert done.stdout == ""
    assert not Path(no_pgserver["HOOKLEDGER_DATA_DIR"], "pg").exists()
