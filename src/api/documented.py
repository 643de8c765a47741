"""What each route answers, for the OpenAPI schema: every status a route really
gives, with the body it carries. The bodies are described here once; the routes
name the statuses they can answer (a test checks both against real answers)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErasureAnswer(msgspec.Struct):
    """An erasure's outcome: each subject (order stream) it reached, with how
    many values of which classes it erased and the ``subject.erased`` event
    recorded (null when nothing was left to erase)."""

    subjects: list[dict[str, Any]]
    erased: bool


class ErrorBody(msgspec.Struct):
    """Every refusal and failure: a code with one meaning (see the README's table)
    and a sentence saying what happened; a 503 also sends ``Retry-After``."""

    error: str
    detail: str


class WebhookAnswer(msgspec.Struct, omit_defaults=True):
    """A delivery taken: ``recorded`` (new, durable at ``position``) or
    ``idempotent`` (a resend of the delivery at ``position``; ``conflict`` when
    the same event id came with other bytes). A SendGrid batch answers counts
    (``recorded``, ``idempotent``), one entry per element (``events``) and the
    delivery's own record (``delivery``)."""

    position: int | None = None
    recorded: bool | int | None = None
    idempotent: bool | int | None = None
    conflict: bool | None = None
    events: list[dict[str, Any]] | None = None
    delivery: dict[str, Any] | None = None


class AuditHistory(msgspec.Struct):
    """An order's stream in order, each event with what recomputing its hash needs."""

    order_id: str
    stream: str
    events: list[dict[str, Any]]


class OrderState(msgspec.Struct):
    """An order's projected state (each section null until the ledger has it)."""

    order_id: str
    order: dict[str, Any] | None
    verification: dict[str, Any] | None
    countdown: dict[str, Any] | None
    actions: list[dict[str, Any]]
    events: int


class Liveness(msgspec.Struct):
    status: str
    version: str
    safe_mode: bool


class Readiness(msgspec.Struct, omit_defaults=True):
    """``ready``, or ``unavailable`` with what a caller needs to know."""

    status: str
    detail: str | None = None


class SelfTestReport(msgspec.Struct):
    """``ok``, ``degraded`` or ``error`` overall, and one entry per subsystem."""

    status: str
    checks: dict[str, dict[str, str]]


_MEANING = {
    400: "malformed_body (not JSON, or not a body the provider could have sent), or "
    "bad_request (a request refused before its body is read)",
    401: "signature_rejected (a webhook) or unauthorized (a read without its token)",
    404: "not_found: an unknown provider, order or route",
    413: "body_too_large",
    415: "unsupported_media_type: not application/json",
    429: "rate_limited: too many bad signatures from this address; retry after Retry-After",
    500: "internal_error or database_refused: logged, with the request's id",
    503: "database_unavailable, shutting_down, overloaded or tree_behind: retry after "
    "Retry-After seconds",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers ``statuses``, each with the error body."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody, description=_MEANING[status], generate_examples=False
        )
        for status in statuses
    }


def shaped(status: int, body: type[msgspec.Struct], description: str) -> dict[int, ResponseSpec]:
    """One more answer of a route's own shape (such as /health's 503)."""
    return {
        status: ResponseSpec(data_container=body, description=description, generate_examples=False)
    }
