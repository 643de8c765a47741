"""Structured logs: one JSON object per line, with the correlation id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from events.correlation import correlation_id, trace_context

_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's duplicate of the message, with terminal colours
}


class JsonFormatter(logging.Formatter):
    """``time``, ``severity``, ``message``, ``logger``, the correlation id, and extras;
    with a Google Cloud project, the request's trace in Cloud Logging's fields."""

    def __init__(self, project: str = "") -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if (ident := correlation_id.get()) is not None:
            line["correlation_id"] = ident
        if self.project and (trace := trace_context.get()) is not None:
            trace_id, span_id, sampled = trace
            line["logging.googleapis.com/trace"] = f"projects/{self.project}/traces/{trace_id}"
            if span_id is not None:
                line["logging.googleapis.com/spanId"] = span_id
            line["logging.googleapis.com/trace_sampled"] = sampled
        for key, value in vars(record).items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO", project: str = "") -> None:
    """Send every log line, ours and the libraries', as JSON to stderr (where
    Cloud Run hands it to Cloud Logging)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "pgserver", "httpx"):
        # Cloud Run logs every request itself; the hot path stays quiet, and the
        # embedded server's start-up chatter is not news. httpx would log every
        # outbound action's request: their outcomes are in the ledger.
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
