"""``POST /api/v1/{provider}/webhook``: verify, normalise, append, answer.

Every delivery passes here, so each configured provider gets a plain ASGI route
of its own (``webhook_routes``): Litestar still routes it and its errors still go
through ``api.errors``, but the per-request machinery of a typed handler, about
half of a delivery's CPU time when measured, is skipped. The typed handler
``receive_webhook`` serves every other provider name (a 404) and carries the
route's OpenAPI description; Litestar prefers the static paths.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, asgi, post
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.openapi.spec.operation import Operation
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from api.answers import answer
from api.documented import WebhookAnswer, errors, shaped
from api.intake import check_content_type, check_declared_length, decode_json, to_new_events
from api.rate_limit import source_address
from api.rejections import BodyTooLarge, MalformedBody, NotFound, RateLimited, SignatureRejected
from api.services import Services
from events.correlation import correlation_id
from events.errors import HookledgerError

_JSON_HEADERS = [(b"content-type", b"application/json")]


async def receive_delivery(
    services: Services,
    provider: str,
    headers: dict[str, str],
    body: AsyncIterator[bytes],
    client: str | None = None,
) -> dict[str, Any]:
    """Check, record and answer one delivery; raises HookledgerError to refuse it."""
    adapter = services.providers.get(provider)
    label = provider if adapter is not None else "unknown"
    started = time.perf_counter()
    try:
        if adapter is None:
            raise NotFound(f"unknown provider {provider!r}")
        check_content_type(headers.get("content-type"))
        check_declared_length(headers.get("content-length"), services.max_body_bytes)
        raw = await read_bounded(body, services.max_body_bytes)
        try:
            adapter.verify(headers, raw, time.time())
        except SignatureRejected:
            address = source_address(client, headers, services.trusted_proxies)
            wait = services.signature_limiter.refused(address)
            if wait is not None:
                raise RateLimited(
                    "too many requests with a bad signature from this address; "
                    "signed deliveries are still accepted",
                    wait,
                ) from None
            raise
        parsed, payload_json = decode_json(raw)
        found = adapter.normalise(headers, parsed)
        events = to_new_events(adapter, found, payload_json, raw, headers, correlation_id.get())
        outcomes = await services.appender.append_many(events)
    except HookledgerError as exc:
        services.metrics.refused(label, exc)
        services.metrics.observe_webhook(label, time.perf_counter() - started)
        raise
    services.metrics.observe_webhook(label, time.perf_counter() - started)
    return answer(services.metrics, label, events, outcomes, batch=adapter.batch)


async def read_bounded(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, refused as soon as it grows past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _headers(scope: Scope) -> dict[str, str]:
    # ASGI header names are lower-case already; one plain dict serves every lookup.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise MalformedBody("the client disconnected before the body was complete")
        yield message.get("body", b"")  # type: ignore[misc]
        if not message.get("more_body", False):
            return


def webhook_routes(providers: list[str]) -> list[ASGIRouteHandler]:
    """One fast route per configured provider."""
    return [_provider_route(name) for name in providers]


def _provider_route(provider: str) -> ASGIRouteHandler:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":  # type: ignore[typeddict-item]
            answer = {"error": "method_not_allowed", "detail": "use POST"}
            await _send(send, 405, answer, ((b"allow", b"POST"),))
            return
        services: Services = scope["app"].state.services
        peer = scope.get("client")
        client = peer[0] if peer else None
        answer = await receive_delivery(services, provider, _headers(scope), _body(receive), client)
        await _send(send, 200, answer)

    return asgi(f"/api/v1/{provider}/webhook", name=f"webhook-{provider}", copy_scope=False)(
        endpoint
    )


async def _send(
    send: Send, status: int, answer: dict[str, Any], extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = msgspec.json.encode(answer)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


@dataclass
class _WebhookOperation(Operation):
    """The intake reads the raw body itself (the signature covers exact bytes);
    the schema still says that a JSON object is expected."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
            required=True,
        )


@post(
    "/api/v1/{provider:str}/webhook",
    status_code=200,
    operation_class=_WebhookOperation,
    # receive_delivery() enforces the limit itself, so the refusal is counted and explained.
    request_max_body_size=None,
    summary="Receive a provider's signed webhook",
    tags=["webhooks"],
    responses={
        **shaped(200, WebhookAnswer, "recorded, or a resend answered idempotent"),
        **errors(400, 401, 404, 413, 415, 429, 500, 503),
    },
)
async def receive_webhook(
    provider: FromPath[str], request: Request[Any, Any, Any]
) -> dict[str, Any]:
    services: Services = request.app.state.services
    client = request.client.host if request.client else None
    return await receive_delivery(
        services, provider, _headers(request.scope), request.stream(), client
    )
