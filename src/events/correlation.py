"""The correlation id of the work in progress, shared by logs and event metadata."""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# The Cloud Trace context of the request in progress (trace id, span id,
# sampled), from X-Cloud-Trace-Context; logs link to the trace with it.
trace_context: ContextVar[tuple[str, str | None, bool] | None] = ContextVar(
    "trace_context", default=None
)
