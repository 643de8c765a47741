"""Who is signed in to the console: a token exchanged for a signed session
cookie (HttpOnly, SameSite=Strict, Secure outside localhost, expiring), its
role, and the CSRF token every form of that session carries.

The cookie is ``base64url(json) + "." + base64url(HMAC-SHA256)`` under the
installation's console key (kept in the database, so every process and
instance accepts it). It holds the role, the expiry, a CSRF token and which
token signed in (a fingerprint, never the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, Literal

import msgspec
from litestar import Request

from api.providers.base import SecretValues
from api.rejections import Unauthorized

Role = Literal["auditor", "operator"]
COOKIE = "hookledger_console"
LIFETIME_SECONDS = 8 * 3600


class Session(msgspec.Struct, frozen=True):
    """A signed-in viewer."""

    role: Role
    expires: int
    csrf: str
    who: str
    # The fingerprint of the token that signed in; empty for the one-time
    # link and for IAP (checked afresh on every request).
    token: str = ""

    @property
    def may_act(self) -> bool:
        """Operators act (retry, replay, erase); auditors only read."""
        return self.role == "operator"


def role_of(token: str, operators: SecretValues, auditors: SecretValues) -> Role | None:
    """The role a presented token signs in as; None if it is no one's."""
    presented = token.strip().encode()
    if not presented:
        return None
    if any(hmac.compare_digest(presented, t.encode()) for t in operators.values):
        return "operator"
    if any(hmac.compare_digest(presented, t.encode()) for t in auditors.values):
        return "auditor"
    return None


def new_session(
    role: Role, token: str, now: float | None = None, who: str | None = None
) -> Session:
    """A fresh session for a token that signed in (``who``: how it is named in
    the ledger; by default the role and the token's fingerprint)."""
    fingerprint = _fingerprint(token)
    return Session(role=role, expires=int((now or time.time()) + LIFETIME_SECONDS),
                   csrf=secrets.token_urlsafe(24), who=who or f"{role} token {fingerprint}",
                   token="" if who else fingerprint)  # fmt: skip


def still_granted(session: Session, operators: SecretValues, auditors: SecretValues) -> bool:
    """Whether the token a session signed in with still grants its role: a
    token taken out of the settings (or moved to the other role) ends the
    sessions it opened at their next request, not when they expire."""
    if not session.token:
        return True
    granting = operators if session.role == "operator" else auditors
    return any(hmac.compare_digest(session.token, _fingerprint(t)) for t in granting.values)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()[:12]


def seal(session: Session, key: bytes) -> str:
    """The cookie's value."""
    body = _b64(msgspec.json.encode(session))
    return body + "." + _b64(hmac.digest(key, body.encode(), "sha256"))


def unseal(value: str, key: bytes, now: float | None = None) -> Session | None:
    """The session a cookie holds; None if forged, malformed or expired."""
    body, _, signature = value.partition(".")
    try:
        expected = _b64(hmac.digest(key, body.encode(), "sha256"))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return None
        session = msgspec.json.decode(_unb64(body), type=Session)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError, UnicodeError):
        return None
    return session if session.expires > (now or time.time()) else None


def secure_cookie(request: Request[Any, Any, Any]) -> bool:
    """Secure everywhere but a plain-HTTP localhost (the embedded default)."""
    host = (request.url.hostname or "").lower()
    return not (request.url.scheme == "http" and host in ("127.0.0.1", "localhost", "::1"))


def same_origin(request: Request[Any, Any, Any]) -> None:
    """Refuse a form posted from another site (CSRF's first line; the token in
    the form is the second)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Unauthorized("a form of the console must be sent from the console itself")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != expected:
            raise Unauthorized("a form of the console must be sent from the console itself")


def check_csrf(session: Session, presented: str | None) -> None:
    """The form's CSRF token must be its session's."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise Unauthorized("the form's CSRF token is missing or not this session's")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
