"""``POST /api/v1/{provider}/webhook``: verify, normalise, append, answer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.openapi.spec.operation import Operation

from api.intake import check_content_type, check_declared_length, decode_json, to_new_events
from api.services import Services
from events.correlation import correlation_id
from events.errors import BodyTooLarge, HookledgerError, NotFound

log = logging.getLogger("hookledger.api")


@dataclass
class _WebhookOperation(Operation):
    """The intake reads the raw body itself (the signature covers exact bytes);
    the schema still says that a JSON object is expected."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
            required=True,
        )


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The raw body, refused as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@post(
    "/api/v1/{provider:str}/webhook",
    status_code=200,
    operation_class=_WebhookOperation,
    # read_body() enforces the limit itself, so the refusal is counted and explained.
    request_max_body_size=None,
    summary="Receive a provider's signed webhook",
    tags=["webhooks"],
)
async def receive_webhook(provider: str, request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    adapter = services.providers.get(provider)
    label = provider if adapter is not None else "unknown"
    try:
        if adapter is None:
            raise NotFound(f"unknown provider {provider!r}")
        # ASGI header names are lower-case already; one plain dict serves every lookup.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        check_content_type(headers.get("content-type"))
        check_declared_length(headers.get("content-length"), services.max_body_bytes)
        body = await read_body(request, services.max_body_bytes)
        adapter.verify(headers, body, time.time())
        parsed, payload_json = decode_json(body)
        found = adapter.normalise(headers, parsed)
        events = to_new_events(adapter, found, payload_json, body, headers, correlation_id.get())
        outcomes = await services.appender.append_many(events)
    except HookledgerError as exc:
        services.metrics.webhooks.labels(label, exc.code).inc()
        raise

    first = outcomes[0]
    if first.conflict:
        services.metrics.webhooks.labels(label, "conflict").inc()
        log.warning(
            "event id reused with a different body",
            extra={
                "provider": provider,
                "event_id": events[0].event_id,
                "position": first.position,
            },
        )
        return {"idempotent": True, "conflict": True, "position": first.position}
    if first.duplicate:
        services.metrics.webhooks.labels(label, "duplicate").inc()
        return {"idempotent": True, "position": first.position}
    services.metrics.webhooks.labels(label, "recorded").inc()
    return {"recorded": True, "position": first.position}
