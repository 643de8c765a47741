"""Audit reads: an order's full history with its hash chain."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, get
from litestar.params import FromPath

from api.documented import AuditHistory, OrderState, errors, shaped
from api.providers.base import SecretValues
from api.rejections import NotFound, Unauthorized
from api.services import Services
from events.evidence import event_view
from events.store import read_stream


def require_reader(request: Request[Any, Any, Any], services: Services) -> None:
    """When read tokens are configured, a ``Bearer`` token must match one."""
    require_token(request, services.read_tokens)


def require_token(
    request: Request[Any, Any, Any], secret: SecretValues, *, in_query: bool = False
) -> None:
    """When ``secret`` has values, a ``Bearer`` token must match one (or, with
    ``in_query``, a ``token`` parameter: for scrapers that can send no header)."""
    tokens = secret.values
    if not tokens:
        return
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    presented = credentials.strip() if scheme.lower() == "bearer" else ""
    if not presented and in_query:
        presented = request.query_params.get("token", "")
    if not presented or not any(
        hmac.compare_digest(presented.encode(), t.encode()) for t in tokens
    ):
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")


@get("/api/v1/orders/{order_id:str}/events", summary="An order's audit history", tags=["reads"],
     responses={**shaped(200, AuditHistory, "the order's events"),
                **errors(400, 401, 404, 500, 503)})  # fmt: skip
async def order_events(order_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    if "\x00" in order_id:  # no order id can hold NUL: Postgres text cannot
        raise NotFound(f"no events for order {order_id!r}")
    events = await read_stream(services.db, f"order-{order_id}")
    if not events:
        raise NotFound(f"no events for order {order_id!r}")
    return {
        "order_id": order_id,
        "stream": events[0].stream,
        "events": [event_view(e) for e in events],
    }


@get("/api/v1/orders/{order_id:str}", summary="An order's projected state", tags=["reads"],
     responses={**shaped(200, OrderState, "the order's projected state"),
                **errors(400, 401, 404, 500, 503)})  # fmt: skip
async def order_state(order_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    status = None
    if services.order_status is not None and "\x00" not in order_id:
        status = await services.order_status(order_id)
    if status is None:
        raise NotFound(f"no order {order_id!r}")
    return status
