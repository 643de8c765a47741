"""What the API refuses, and why a signature was refused.

The errors here are raised by the API only (``api.errors`` gives each its HTTP
status). A refused signature is one 401 to the caller and a reason for the
metrics: every reason is a ``SignatureRejected``; ``reason`` tells an operator
whether a secret is missing or wrong, a header absent or unreadable, or a
timestamp stale (a clock or a replay).
"""

from __future__ import annotations

from events.errors import InputError


class MalformedBody(InputError):
    """Not JSON, or not a body the provider sends (400)."""

    code = "malformed_body"


class SignatureRejected(InputError):
    """Missing or bad signature, stale timestamp, no secret (401)."""

    code = "signature_rejected"


class Unauthorized(InputError):
    """A read or a task call without valid credentials (a bearer token, a task's
    OIDC token or secret) (401)."""

    code = "unauthorized"


class Forbidden(InputError):
    """Signed in, but the role may not do this (an auditor asking to act) (403)."""

    code = "forbidden"


class NotFound(InputError):
    """Unknown provider, unknown order (404)."""

    code = "not_found"


class BodyTooLarge(InputError):
    """A body over the limit (413)."""

    code = "body_too_large"


class UnsupportedMediaType(InputError):
    """A body that is not JSON by its content type (415)."""

    code = "unsupported_media_type"


NO_SECRET = "no_secret"  # noqa: S105 (a metrics label, not a secret)
MISSING = "missing"
MALFORMED = "malformed"
STALE = "stale"
MISMATCH = "mismatch"
REASONS = (NO_SECRET, MISSING, MALFORMED, STALE, MISMATCH)


class Rejected(SignatureRejected):
    """A refused signature and the reason it was refused."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def reason_of(exc: SignatureRejected) -> str:
    """The metrics reason of a refusal (``mismatch`` when none was given)."""
    return exc.reason if isinstance(exc, Rejected) else MISMATCH


def signed_timestamp(stamp: str | None, now: float, tolerance: int, header: str) -> int:
    """A signed Unix timestamp in seconds, refused when unreadable or more than
    ``tolerance`` seconds from ``now`` either way (a replay or a wrong clock)."""
    if not stamp or not stamp.isascii() or not stamp.isdigit():
        raise Rejected(MALFORMED, f"{header} is not a Unix timestamp in seconds")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        raise Rejected(STALE, f"{header} is more than {tolerance} s away from now")
    return timestamp


class BadQuery(InputError):
    """A query or path parameter the route cannot use (400)."""

    code = "bad_request"


class RateLimited(InputError):
    """Too many refused signatures from one address (429, Retry-After)."""

    code = "rate_limited"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
