"""Slow clients cannot hold the service: a connection that sends nothing, half a
header block or half a body is closed once HOOKLEDGER_REQUEST_TIMEOUT has
passed, while a slow request that does arrive in time is answered, and so is
everyone else throughout."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e_helpers import order_body, send_post_purchase
from tests.support import ServerProcess, post_purchase_headers

TIMEOUT = 1.0


@pytest.fixture
def impatient_server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, env={"HOOKLEDGER_REQUEST_TIMEOUT": f"{TIMEOUT}s"})
    yield process.start()
    process.stop()


def opened(server: ServerProcess, first: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    if first:
        conn.sendall(first)
    return conn


def closed_by_server(conn: socket.socket) -> bool:
    try:
        return conn.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def request_head(body: bytes) -> bytes:
    headers = {**post_purchase_headers(body), "content-length": str(len(body))}
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /api/v1/post-purchase/webhook HTTP/1.1\r\nhost: x\r\n{lines}\r\n".encode()


def test_connections_whose_request_never_arrives_are_closed_in_time(
    impatient_server: ServerProcess,
) -> None:
    body = json.dumps(order_body("slow-1")).encode()
    stalled = [
        opened(impatient_server, b""),  # nothing at all
        opened(impatient_server, request_head(body)[:40]),  # half a header block
        opened(impatient_server, request_head(body) + body[:10]),  # half a body
    ]
    started = time.monotonic()
    # Meanwhile the service answers everyone else.
    assert send_post_purchase(impatient_server.url, order_body("slow-2")).status_code == 200
    for conn in stalled:
        conn.settimeout(TIMEOUT * 5)
        assert closed_by_server(conn)
        conn.close()
    assert time.monotonic() - started < TIMEOUT * 5


def test_a_slow_request_that_arrives_in_time_is_answered(impatient_server: ServerProcess) -> None:
    body = json.dumps(order_body("slow-3")).encode()
    conn = opened(impatient_server, request_head(body) + body[:10])
    time.sleep(TIMEOUT / 3)
    conn.sendall(body[10:])
    answer = conn.recv(4096)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


FILE_LIMIT = 1024
FLOOD = 1100


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
def test_a_flood_of_idle_connections_past_the_file_limit_never_stops_intake(
    database_url: str,
) -> None:
    # An attacker's 1,100 connections that send nothing, against a process
    # allowed 1,024 descriptors: those over the cap are refused at once (503,
    # Retry-After) instead of the process running out of descriptors, the
    # others are closed at their deadline, and intake goes on throughout.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < FLOOD + 100:
        pytest.skip(f"this process may open {hard} files, the flood needs {FLOOD + 100}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FLOOD + 100), hard))
    server = ServerProcess(database_url, env={"HOOKLEDGER_REQUEST_TIMEOUT": "3s"})
    server.nofile = FILE_LIMIT
    server.start()
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            flood.append(opened(server, b""))
        refused = 0
        for conn in flood:
            conn.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                answer = conn.recv(4096)
                if answer.startswith(b"HTTP/1.1 503"):
                    assert b"retry-after: " in answer.lower()
                    refused += 1
        assert refused >= FLOOD - FILE_LIMIT  # at least those past the limit
        # A provider during the flood: refused with Retry-After, or recorded.
        during = send_post_purchase(server.url, order_body("flood-1"))
        assert during.status_code in (200, 503)
        if during.status_code == 503:
            assert during.headers["retry-after"]
        # Once the deadline closed the idle ones, deliveries go through again.
        deadline = time.monotonic() + 15
        after = send_post_purchase(server.url, order_body("flood-2"))
        while after.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            after = send_post_purchase(server.url, order_body("flood-2"))
        assert after.status_code == 200
    finally:
        for conn in flood:
            conn.close()
        server.stop()
    log = server.output()
    assert "Too many open files" not in log and "out of system resource" not in log
    assert "connections over the cap answered 503" in log
