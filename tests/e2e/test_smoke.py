from __future__ import annotations

import httpx

from tests.support import ServerProcess


def test_healthz_reports_version_and_safe_mode(server: ServerProcess) -> None:
    body = httpx.get(server.url + "/healthz").json()
    assert body["status"] == "ok"
    assert body["safe_mode"] is True
