"""The HTTP side of an action: the exact request, sending it once, and what the
provider's answer means for retrying."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import httpx
import msgspec

from scheduler.actions.model import ActionRequest
from scheduler.actions.scrub import scrub, secret_values

# Field names (headers and body keys, any case) whose values are credentials:
# they are sent, never recorded.
SECRET_FIELDS = frozenset({"authorization", "transactionkey"})
REDACTED = "[redacted]"
EXCERPT_CHARS = 2000
ERROR_EXCERPT_CHARS = 200

Result = Literal["succeeded", "retry", "give_up"]


class HttpRequest(msgspec.Struct, frozen=True):
    """Exactly what is sent: the body goes out as this JSON, keys in this order."""

    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    def redacted(self) -> dict[str, Any]:
        """The request as recorded in the ledger: credentials replaced."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": _redact(self.headers),
            "body": _redact(self.body),
        }


class Prepared(msgspec.Struct, frozen=True):
    """A request built for an action.

    ``sent_key`` is the idempotency key in the form the provider receives it.
    ``missing`` says why the request cannot be sent (data or configuration
    missing); the request then shows the missing values as null.
    """

    request: HttpRequest
    sent_key: str
    missing: str | None = None


class Verdict(msgspec.Struct, frozen=True):
    """What one attempt came to. ``error`` is the detail the ledger keeps;
    ``cause`` is a short summary free of personal data, for logs."""

    result: Result
    error: str | None = None
    cause: str = ""
    response: dict[str, Any] | None = None


class Sender(Protocol):
    """Knows one provider: how to build an action's request and read its answer."""

    provider: str

    def prepare(self, action: ActionRequest) -> Prepared: ...

    def judge(self, status: int, body: bytes) -> Verdict: ...


def judge_status(status: int, body: bytes) -> Verdict:
    """2xx succeeds; 408, 429 and 5xx may pass later; any other answer will not."""
    if 200 <= status < 300:
        return Verdict("succeeded")
    detail = f"HTTP {status}: {excerpt(body, ERROR_EXCERPT_CHARS)}".rstrip(": ")
    if status in {408, 429} or status >= 500:
        return Verdict("retry", error=detail, cause=f"HTTP {status}")
    return Verdict(
        "give_up",
        error=f"{detail} (refused; retrying cannot help)",
        cause=f"HTTP {status}",
    )


async def send(client: httpx.AsyncClient, request: HttpRequest, sender: Sender) -> Verdict:
    """Send ``request`` once and judge the answer; a lost connection or a timeout
    is worth another try. What is kept of the answer holds none of the request's
    credentials (nor anything shaped like one)."""
    verdict = await _send(client, request, sender)
    secrets = secret_values(request.headers, SECRET_FIELDS) | secret_values(
        request.body, SECRET_FIELDS
    )
    response = verdict.response
    if response is not None and isinstance(response.get("body"), str):
        response = {**response, "body": scrub(response["body"], secrets)}
    error = scrub(verdict.error, secrets) if verdict.error is not None else None
    return msgspec.structs.replace(verdict, error=error, response=response)


async def _send(client: httpx.AsyncClient, request: HttpRequest, sender: Sender) -> Verdict:
    try:
        response = await client.request(
            request.method,
            request.url,
            headers=request.headers,
            content=msgspec.json.encode(request.body),
        )
    except (httpx.InvalidURL, ValueError) as exc:
        # A base URL or credential httpx cannot put on the wire: configuration.
        name = type(exc).__name__
        return Verdict("give_up", error=f"cannot send: {name}: {exc}", cause=name)
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        return Verdict("retry", error=f"{name}: {exc}".rstrip(": "), cause=name)
    verdict = sender.judge(response.status_code, response.content)
    seen = {"status": response.status_code, "body": excerpt(response.content, EXCERPT_CHARS)}
    return msgspec.structs.replace(verdict, response=seen)


def excerpt(body: bytes, limit: int) -> str:
    """The start of a response body as text that Postgres' jsonb can hold."""
    return body[: limit * 4].decode("utf-8", "replace")[:limit].replace("\x00", "\ufffd")


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if k.lower() in SECRET_FIELDS and v else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value
