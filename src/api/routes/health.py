"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get

from api.documented import Liveness, Readiness, SelfTestReport, errors, shaped
from api.errors import RETRY_AFTER_SECONDS, public_detail
from api.metrics import Gauge
from api.rejections import NotFound
from api.routes.reads import require_reader, require_token
from api.services import Services
from events.checkpoints import consumer_lags
from events.errors import HookledgerError
from events.quarantine import quarantine_counts
from events.queries import QUERIES

log = logging.getLogger(__name__)


@get("/healthz", summary="Liveness", tags=["operations"],
     responses=shaped(200, Liveness, "the process answers"))  # fmt: skip
async def healthz(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    return {"status": "ok", "version": services.version, "safe_mode": services.safe_mode}


@get("/health", summary="Readiness: the database answers, no background job is down",
     tags=["operations"],
     responses={**shaped(200, Readiness, "ready"),
                **shaped(503, Readiness, "unavailable: the database does not answer or a "
                         "background job is down; Retry-After")})  # fmt: skip
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services: Services = request.app.state.services
    try:
        await services.db.fetch_one(QUERIES["ping"])
    except HookledgerError as exc:
        log.warning("not ready", extra={"error": exc.code, "detail": exc.detail})
        return Response(
            {"status": "unavailable", "detail": public_detail(exc)},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    down = services.jobs_down() if services.jobs_down is not None else {}
    if down:
        # A job that keeps dying: this instance does not do all of its work.
        return Response(
            {"status": "unavailable", "detail": f"background job down: {', '.join(sorted(down))}"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return Response({"status": "ready"}, status_code=200)


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type="text/plain")
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services: Services = request.app.state.services
    # Cloud Run's Prometheus sidecar can send parameters, not headers.
    require_token(request, services.metrics_tokens, in_query=True)
    gauges: list[Gauge] = []
    try:
        lags = await consumer_lags(services.db)
        quarantined: dict[str, int] | None = await quarantine_counts(services.db)
        if services.operation_gauges is not None:
            gauges = await services.operation_gauges()
    except HookledgerError as exc:
        # Metrics must answer while the database is away: show what this process knows.
        log.warning("consumer lag not read", extra={"error": exc.detail})
        lags, quarantined = [], None
        gauges = [
            Gauge("hookledger_database_up", "1 when this scrape could read the database", {}, 0)
        ]
    return Response(
        services.metrics.render(lags, quarantined, gauges),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


@get("/__selftest", summary="Every subsystem's state (503 on a critical error)",
     tags=["operations"],
     responses={**shaped(200, SelfTestReport, "ok or degraded"),
                **shaped(503, SelfTestReport, "a critical subsystem is in error"),
                **errors(401, 404)})  # fmt: skip
async def selftest(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services: Services = request.app.state.services
    # It tells how the service is configured: an operator's read, like the audit's.
    require_reader(request, services)
    if services.selftest is None:
        raise NotFound("no self-test in this process")
    report = await services.selftest()
    return Response(report, status_code=503 if report["status"] == "error" else 200)
