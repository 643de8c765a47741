"""Signing in behind Google's Identity-Aware Proxy: every request carries
``x-goog-iap-jwt-assertion``, a JWT that IAP signed (ES256) for this backend.
Its signature (against IAP's published keys), audience and expiry are checked,
and its e-mail mapped to a role. A header that fails any check is refused: it is
never taken for a cookie-less visitor."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from google.auth import exceptions as google_errors
from google.auth import jwt

from api.console.session import Role
from api.rejections import Forbidden, Unauthorized

HEADER = "x-goog-iap-jwt-assertion"
ISSUER = "https://cloud.google.com/iap"
KEYS_TTL_SECONDS = 3600.0


class IapVerifier:
    """Checks IAP's assertions for one audience (the backend service's)."""

    def __init__(self, audience: str, keys_url: str, operators: set[str], auditors: set[str],
                 timeout: float = 5.0) -> None:  # fmt: skip
        self._audience = audience
        self._keys_url = keys_url
        self._operators = {e.lower() for e in operators}
        self._auditors = {e.lower() for e in auditors}
        self._timeout = timeout
        self._keys: dict[str, str] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def identify(self, assertion: str) -> tuple[Role, str, int]:
        """The role, e-mail and expiry of a valid assertion; Unauthorized if it
        is not one, Forbidden if its e-mail has no role here."""
        claims = await self._verified(assertion)
        email = str(claims.get("email", "")).lower()
        if claims.get("iss") != ISSUER or not email:
            raise Unauthorized("the IAP assertion names no user or another issuer")
        if email in self._operators:
            return "operator", email, int(claims["exp"])
        if email in self._auditors:
            return "auditor", email, int(claims["exp"])
        raise Forbidden(f"{email} has no role here (HOOKLEDGER_OPERATOR_EMAILS, "
                        "HOOKLEDGER_AUDITOR_EMAILS)")  # fmt: skip

    async def _verified(self, assertion: str) -> dict[str, Any]:
        for fresh in (False, True):
            keys = await self._current_keys(fresh)
            try:
                claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                    assertion, certs=keys, audience=self._audience
                )
                return claims
            except (ValueError, google_errors.GoogleAuthError) as exc:
                reason = str(exc)
                # A key IAP rotated in since the last fetch: fetch once more.
                if fresh or "Certificate for key id" not in reason:
                    detail = f"the IAP assertion does not verify: {reason[:200]}"
                    raise Unauthorized(detail) from None
        raise Unauthorized("the IAP assertion does not verify")

    async def _current_keys(self, fresh: bool) -> dict[str, str]:
        async with self._lock:
            stale = time.monotonic() - self._fetched > KEYS_TTL_SECONDS
            if fresh or stale or not self._keys:
                try:
                    async with httpx.AsyncClient(timeout=self._timeout) as client:
                        answer = await client.get(self._keys_url)
                        answer.raise_for_status()
                        self._keys = {str(k): str(v) for k, v in answer.json().items()}
                        self._fetched = time.monotonic()
                except (httpx.HTTPError, ValueError) as exc:
                    if not self._keys:
                        raise Unauthorized(f"IAP's keys could not be read: {exc}") from None
            return self._keys
