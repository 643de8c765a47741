"""The README's idempotency check, run as written (only the service's address and
the path to the command changed): recorded first, then idempotent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT, ServerProcess

CHECK_START = "SECRET=$(.venv/bin/hookledger secret veriff)"
# The check the service's own documentation gives, byte for byte.
BODY_LINE = """BODY='{"event":"verification.updated","id":"evt_test_123","status":"approved"}'"""


def readme_check() -> list[str]:
    """The check's shell lines, from the README's indented block that starts it."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("    " + CHECK_START)
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line.removeprefix("    "))
    return block


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the README's check uses openssl")
def test_the_readmes_idempotency_check_records_once_then_answers_idempotent(
    server: ServerProcess,
) -> None:
    lines = readme_check()
    assert lines[0] == CHECK_START
    assert lines[1] == BODY_LINE
    assert len(lines) == 5 and lines[3] == lines[4] and lines[3].startswith("curl ")
    hookledger = f"{sys.executable} -m hookledger.cli"
    script = "\n".join(
        line.replace(".venv/bin/hookledger", hookledger).replace(
            "http://127.0.0.1:8080", server.url
        )
        for line in lines
    )
    env = {**os.environ, **{k: v for k, v in server.env.items() if k.startswith("HOOKLEDGER_")}}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(done.stdout)
    second, _ = decoder.raw_decode(done.stdout, end)
    assert first == {"recorded": True, "position": first["position"]}
    assert second == {"idempotent": True, "position": first["position"]}
