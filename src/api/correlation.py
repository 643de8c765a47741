"""Correlation ids: taken from X-Request-ID or X-Cloud-Trace-Context, else made
up; echoed as X-Request-ID and available to logs and event metadata."""

from __future__ import annotations

import re
import secrets

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from events.correlation import correlation_id, trace_context

_SAFE = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")


def pick_correlation_id(request_id: str | None, trace_context: str | None) -> str:
    """The caller's id if it is sane, else the trace id, else a new one."""
    if request_id and _SAFE.match(request_id):
        return request_id
    if trace_context:
        trace = trace_context.split("/", 1)[0]
        if _SAFE.match(trace):
            return trace
    return secrets.token_hex(16)


_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")


def parse_trace_context(value: str | None) -> tuple[str, str | None, bool] | None:
    """``TRACE_ID/SPAN_ID;o=1`` as (trace id, span id as 16 hex digits, sampled)."""
    found = _TRACE.match(value.strip()) if value else None
    if found is None:
        return None
    trace, span, sampled = found.groups()
    span_hex = f"{int(span):016x}" if span and int(span) < 2**64 else None
    return trace.lower(), span_hex, sampled == "1"


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        request_id = trace = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"x-cloud-trace-context":
                trace = value.decode("latin-1")
        ident = pick_correlation_id(request_id, trace)
        token = correlation_id.set(ident)
        trace_token = trace_context.set(parse_trace_context(trace))
        echoed = ident.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", echoed))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
            trace_context.reset(trace_token)

    return middleware
