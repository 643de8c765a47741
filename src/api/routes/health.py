"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.errors import RETRY_AFTER_SECONDS
from api.services import Services
from events.errors import HookledgerError
from events.queries import QUERIES


@get("/healthz", summary="Liveness", tags=["operations"])
async def healthz(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    return {"status": "ok", "version": services.version, "safe_mode": services.safe_mode}


@get("/health", summary="Readiness: the database answers", tags=["operations"])
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services: Services = request.app.state.services
    try:
        await services.db.fetch_one(QUERIES["ping"])
    except HookledgerError as exc:
        return Response(
            {"status": "unavailable", "detail": exc.detail},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return Response({"status": "ready"}, status_code=200)


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type="text/plain")
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services: Services = request.app.state.services
    return Response(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
