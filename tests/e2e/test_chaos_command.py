"""The chaos drills run as their command (`python -m benchmarks.chaos`): one
quick drill here, so that the command keeps working; the full set is run by hand
(figures in benchmarks/README.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_a_killed_background_process_loses_and_doubles_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--drill", "background", "--seconds", "3",
         "--rate", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lost 0, doubled 0" in done.stdout
