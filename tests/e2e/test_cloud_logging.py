"""Log lines as Cloud Logging reads them: ``severity``, ``message``, and the
request's trace from ``X-Cloud-Trace-Context`` when a project is configured."""

from __future__ import annotations

import json
import logging

from api.correlation import parse_trace_context
from events.correlation import trace_context
from hookledger.logs import JsonFormatter
from tests.e2e_helpers import send_veriff
from tests.support import ServerProcess

TRACE = "105445aa7843bc8bf206b12000100000"


def test_the_trace_header_is_read_as_trace_span_and_sampled() -> None:
    assert parse_trace_context(f"{TRACE}/1;o=1") == (TRACE, "0000000000000001", True)
    assert parse_trace_context(f"{TRACE.upper()}/255;o=0") == (TRACE, "00000000000000ff", False)
    assert parse_trace_context(TRACE) == (TRACE, None, False)
    for junk in (None, "", "not-a-trace", f"{TRACE}/x", f"{TRACE}/{2**64}"):
        assert parse_trace_context(junk) in (None, (TRACE, None, False))
    assert parse_trace_context("abc/1;o=1") is None


def line(formatter: JsonFormatter) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": "request refused", "levelname": "WARNING"})
    parsed: dict[str, object] = json.loads(formatter.format(record))
    return parsed


def test_a_line_carries_the_trace_only_with_a_project_and_a_trace() -> None:
    assert "logging.googleapis.com/trace" not in line(JsonFormatter("my-project"))
    token = trace_context.set((TRACE, "0000000000000001", True))
    try:
        with_project = line(JsonFormatter("my-project"))
        without = line(JsonFormatter(""))
    finally:
        trace_context.reset(token)
    assert with_project["severity"] == "WARNING"
    assert with_project["message"] == "request refused"
    assert with_project["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert with_project["logging.googleapis.com/spanId"] == "0000000000000001"
    assert with_project["logging.googleapis.com/trace_sampled"] is True
    assert "logging.googleapis.com/trace" not in without


def test_a_served_request_s_log_line_links_to_its_trace(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_GCP_PROJECT": "my-project"}).start()
    try:
        answer = send_veriff(server.url, {"id": "x", "status": "approved"}, secret="wrong",
                             headers={"x-cloud-trace-context": f"{TRACE}/7;o=1"})  # fmt: skip
        assert answer.status_code == 401
    finally:
        server.stop()
    lines = [json.loads(text) for text in server.output().splitlines() if text.startswith("{")]
    refused = [entry for entry in lines if entry.get("message") == "request refused"]
    assert refused, server.output()
    assert refused[-1]["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert refused[-1]["severity"] == "WARNING"
