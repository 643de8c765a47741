"""Every error code an HTTP answer can carry has one documented meaning in the
README's table, with the status the API really gives it."""

from __future__ import annotations

import re

import api.rejections
import events.errors
import exporter.errors
import scheduler.errors
from api.errors import _HTTP_CODES, status_of
from events.errors import HookledgerError
from tests.support import ROOT

# Raised only outside a request (the CLI, the workers, the exporter): no answer carries them.
NEVER_ANSWERED = {"unavailable", "bad_request", "internal_error", "checkpoint_moved",
                  "migration_error", "replay_failed", "chain_broken",
                  "destination_unavailable", "destination_refused"}  # fmt: skip


def _documented() -> dict[str, int]:
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| .+ \|$", text, re.MULTILINE)
    return {code: int(status) for code, status in rows}


def _subclasses(kind: type[HookledgerError]) -> list[type[HookledgerError]]:
    found = [kind]
    for sub in kind.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def test_every_error_code_an_answer_carries_is_documented_with_its_status() -> None:
    assert api.rejections and exporter.errors and scheduler.errors and events.errors
    documented = _documented()
    for kind in _subclasses(HookledgerError):
        if kind.code in NEVER_ANSWERED:
            continue
        assert documented.get(kind.code) == status_of(kind.__new__(kind)), kind.__name__
    for status, code in _HTTP_CODES.items():
        assert documented.get(code) == status, code


def test_each_documented_code_means_one_thing() -> None:
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, re.MULTILINE)
    codes = [code for code, _ in rows]
    assert len(codes) == len(set(codes))
    assert "unauthorized" in codes and "signature_rejected" in codes
