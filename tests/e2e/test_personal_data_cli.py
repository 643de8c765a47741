"""`hookledger personal-data`: the policy in force and what it finds in the
sample bodies, from any folder, never a value; a bad policy file is refused
naming its setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def personal_data(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookledger.cli", "personal-data", *args],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_the_default_policy_is_shown_with_what_it_finds_and_no_value(tmp_path: Path) -> None:
    done = personal_data(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    samples = {(s["provider"], s["type"]): s["personal"] for s in described["samples"]}
    veriff = samples["veriff", "verification.approved"]
    assert {"path": "verification.person", "keep": "7d", "from": "countdown_closed"} in veriff
    assert "customer@example.com" not in done.stdout  # paths, never the values
    lines = personal_data(tmp_path)
    assert lines.returncode == 0 and "the built-in default" in lines.stdout


def test_a_bad_policy_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('[[rule]]\npersonal = ["email"]\nkeep = "forever"\n')
    done = personal_data(tmp_path, HOOKLEDGER_PERSONAL_DATA_POLICY=str(bad))
    assert done.returncode == 2
    assert "HOOKLEDGER_PERSONAL_DATA_POLICY" in done.stderr and "forever" in done.stderr
