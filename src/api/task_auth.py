"""Who may call the internal task endpoint.

On Google Cloud, Cloud Tasks sends a Google-signed OIDC token; google-auth checks
its signature against Google's published certificates, its expiry and its
audience, and we check the issuer and that it names the configured service
account. Off Google Cloud (or with an emulator, which sends no token) a caller
may instead present the configured shared secret in ``X-Hookledger-Task-Secret``.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from google.auth import jwt

from api.rejections import Unauthorized

log = logging.getLogger(__name__)

SECRET_HEADER = "x-hookledger-task-secret"  # noqa: S105 (a header name)
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CERTS_TTL = 3600.0
# An unknown key id may mean Google rotated its keys: look again, but not more
# often than this.
CERTS_REFETCH_AFTER = 60.0
CLOCK_SKEW_SECONDS = 30


class TaskAuth:
    """Checks a task call's credentials; raises Unauthorized (401)."""

    def __init__(
        self,
        *,
        secrets: Callable[[], tuple[str, ...]],
        service_account: str,
        audience: str,
        certs_url: str,
    ) -> None:
        self._secrets = secrets
        self._service_account = service_account
        self._audience = audience
        self._certs_url = certs_url
        self._certs: dict[str, str] = {}
        self._fetched_at = float("-inf")

    @property
    def configured(self) -> bool:
        """Whether any caller at all can be let in."""
        return bool(self._service_account or self._secrets())

    async def check(self, headers: Mapping[str, str]) -> None:
        presented = headers.get(SECRET_HEADER, "")
        if presented and any(
            hmac.compare_digest(presented.encode(), s.encode()) for s in self._secrets()
        ):
            return
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if self._service_account and scheme.lower() == "bearer" and token.strip():
            claims = await self._verify(token.strip())
            if claims.get("iss") not in GOOGLE_ISSUERS:
                raise Unauthorized("the task's token was not issued by Google")
            if claims.get("email") != self._service_account or not claims.get("email_verified"):
                raise Unauthorized("the task's token is not the configured service account")
            return
        raise Unauthorized("a task needs a Google OIDC token or the task secret header")

    async def _verify(self, token: str) -> dict[str, Any]:
        for attempt in range(2):
            certs = await self._current_certs(refresh=attempt > 0)
            try:
                claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call,unused-ignore]
                    token,
                    certs=certs,
                    audience=self._audience,
                    clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
                )
            except ValueError as exc:
                if attempt == 0 and "Certificate for key id" in str(exc):
                    continue
                # google-auth's reason names what failed (expiry, audience,
                # signature), never the token itself.
                raise Unauthorized(f"the task's token does not verify: {exc}") from None
            return claims
        raise Unauthorized("the task's token is signed by an unknown key")

    async def _current_certs(self, *, refresh: bool) -> dict[str, str]:
        age = time.monotonic() - self._fetched_at
        if self._certs and age < CERTS_TTL and not (refresh and age > CERTS_REFETCH_AFTER):
            return self._certs
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.get(self._certs_url)
                answer.raise_for_status()
                certs = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Google's certificates not fetched", extra={"error": str(exc)})
            if self._certs:
                return self._certs
            raise Unauthorized("the task's token cannot be checked now") from None
        self._certs = {str(k): str(v) for k, v in certs.items()}
        self._fetched_at = time.monotonic()
        return self._certs
