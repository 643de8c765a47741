"""Helpers of the end-to-end tests: signed deliveries, ledger counts, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import psycopg

from tests.support import (
    POST_PURCHASE_SECRET,
    ROOT,
    VERIFF_SECRET,
    post_purchase_headers,
    veriff_headers,
)

T = TypeVar("T")

VERIFF_PATH = "/api/v1/veriff/webhook"
POST_PURCHASE_PATH = "/api/v1/post-purchase/webhook"


def encode(body: Mapping[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def order_body(order_id: str, event: str = "order.created", **extra: Any) -> dict[str, Any]:
    """A body the shop sends."""
    return {"event": event, "orderId": order_id, "orderTotal": 59.9, "currency": "EUR", **extra}


def decision_body(
    order_id: str, status: str = "approved", session: str | None = None
) -> dict[str, Any]:
    """A Veriff decision webhook for an order (``vendorData`` carries the order id)."""
    session = session or f"session-{uuid.uuid4().hex[:8]}"
    return {
        "status": "success",
        "verification": {
            "id": session,
            "code": 9001,
            "status": status,
            "vendorData": order_id,
            "decisionTime": "2024-05-01T10:00:00.123456Z",
        },
    }


def send_veriff(
    base_url: str,
    body: Mapping[str, Any] | bytes,
    *,
    secret: str = VERIFF_SECRET,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    raw = encode(body)
    return httpx.post(
        base_url + VERIFF_PATH,
        content=raw,
        headers={**veriff_headers(raw, secret), **(headers or {})},
        timeout=10,
    )


def send_post_purchase(
    base_url: str,
    body: Mapping[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    secret: str = POST_PURCHASE_SECRET,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    raw = encode(body)
    return httpx.post(
        base_url + POST_PURCHASE_PATH,
        content=raw,
        headers={**post_purchase_headers(raw, msg_id, timestamp, secret), **(headers or {})},
        timeout=10,
    )


def count_events(database_url: str) -> int:
    """Rows in the ledger, read directly from Postgres."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def event_row(database_url: str, provider: str, event_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT position, stream, stream_version, type, raw, metadata "
            "FROM events WHERE provider = %s AND event_id = %s",
            (provider, event_id),
        )
        row = cur.fetchone()
    if row is None:
        return None
    names = ("position", "stream", "stream_version", "type", "raw", "metadata")
    return dict(zip(names, row, strict=True))


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """An error answer: the status, and a JSON body of exactly ``error`` and ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    if error is not None:
        assert body["error"] == error, body
    return body


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HOOKLEDGER_DATABASE_URL": database_url,
        "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
        "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
        **extra,
    }


def run_cli(
    database_url: str, *args: str, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hookledger ARGS`` in a subprocess, as an operator runs it (``env``: extra settings)."""
    return subprocess.run(
        [sys.executable, "-m", "hookledger.cli", *args],
        env=cli_env(database_url, **(env or {})),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something truthy; return that, else the last value."""
    deadline = time.monotonic() + timeout
    result = predicate()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = predicate()
    return result


def signed_whole_ledger(database_url: str) -> bool:
    """A signed checkpoint covers every event: the tree and the checkpoint job
    have caught up with the ledger."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT max(size) FROM tree_checkpoints)"
        ).fetchone()
    return row is not None and row[0] == row[1]
