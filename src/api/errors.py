"""The one place where errors become HTTP answers: ``{"error", "detail"}`` JSON."""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

from litestar import Request, Response
from litestar.exceptions import HTTPException

from api.rejections import (
    BadQuery,
    BodyTooLarge,
    Forbidden,
    MalformedBody,
    NotFound,
    RateLimited,
    SignatureRejected,
    Unauthorized,
    UnsupportedMediaType,
)
from events.errors import (
    AppenderStopped,
    DatabaseRefused,
    DatabaseUnavailable,
    HookledgerError,
    TreeBroken,
    Unavailable,
    UpstreamUnavailable,
)

log = logging.getLogger("hookledger.api")

AnyRequest = Request[Any, Any, Any]
T = TypeVar("T")

RETRY_AFTER_SECONDS = 2

STATUS: dict[type[HookledgerError], int] = {
    MalformedBody: 400,
    BadQuery: 400,
    SignatureRejected: 401,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    RateLimited: 429,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    Unavailable: 503,
    DatabaseRefused: 500,
    TreeBroken: 500,
}

# What a caller is told of a server-side failure: what happened and what to do,
# never the driver's text (socket paths, hosts, pool internals), which the log keeps.
PUBLIC_DETAIL: dict[type[HookledgerError], str] = {
    DatabaseUnavailable: f"database unavailable; retry after {RETRY_AFTER_SECONDS} s",
    AppenderStopped: f"the service is shutting down; retry after {RETRY_AFTER_SECONDS} s",
    UpstreamUnavailable: f"a cloud service did not answer; retry after {RETRY_AFTER_SECONDS} s",
    DatabaseRefused: "the database refused the request; it was logged",
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _nearest(table: dict[type[HookledgerError], T], exc: HookledgerError) -> T | None:
    """The entry of ``exc``'s class, else of its nearest base class in ``table``."""
    for kind in type(exc).__mro__:
        if kind in table:
            return table[kind]
    return None


def status_of(exc: HookledgerError) -> int:
    status = _nearest(STATUS, exc)
    return 500 if status is None else status


def public_detail(exc: HookledgerError) -> str:
    """The detail a caller may read: the error's own for what the caller can fix,
    a fixed sentence for what failed on our side."""
    public = _nearest(PUBLIC_DETAIL, exc)
    return exc.detail if public is None else public


def error_response(
    status: int, code: str, detail: str, retry_after: float | None = None
) -> Response[dict[str, str]]:
    if retry_after is None and status == 503:
        retry_after = RETRY_AFTER_SECONDS
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
    return Response({"error": code, "detail": detail}, status_code=status, headers=headers)


def hookledger_error(request: AnyRequest, exc: HookledgerError) -> Response[dict[str, str]]:
    status = status_of(exc)
    level = logging.ERROR if status >= 500 else logging.WARNING
    log.log(
        level,
        "request refused",
        extra={"path": request.url.path, "status": status, "error": exc.code, "detail": exc.detail},
    )
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    return error_response(status, exc.code, public_detail(exc), retry_after)


def http_error(request: AnyRequest, exc: HTTPException) -> Response[dict[str, str]]:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    if status >= 500:
        log.error("request failed", extra={"path": request.url.path, "status": status})
    return error_response(status, code, str(exc.detail))


def unexpected_error(request: AnyRequest, exc: Exception) -> Response[dict[str, str]]:
    log.exception("unexpected error", extra={"path": request.url.path})
    return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
