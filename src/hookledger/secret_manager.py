"""Secret Manager references and reading them with the official client.

A secret setting may name a version as ``sm://PROJECT/SECRET[#VERSION]`` or by
its resource name ``projects/P/secrets/S[/versions/V]``; no version means
``latest``, which is what makes a rotation take effect on the next refresh.
"""

from __future__ import annotations

import re
from typing import Any

from events.errors import UpstreamUnavailable

_SHORT = re.compile(r"^sm://([^/#\s]+)/([^/#\s]+)(?:#([^/#\s]+))?$")
_FULL = re.compile(r"^projects/([^/\s]+)/secrets/([^/\s]+)(?:/versions/([^/\s]+))?$")
CALL_TIMEOUT = 10.0


def reference(value: str) -> str | None:
    """The version's resource name if ``value`` refers to Secret Manager, else None."""
    found = _SHORT.match(value) or _FULL.match(value)
    if found is None:
        return None
    project, secret, version = found.groups()
    return f"projects/{project}/secrets/{secret}/versions/{version or 'latest'}"


class SecretManager:
    """Reads secret versions over the REST transport; ``endpoint`` (a URL such
    as ``http://127.0.0.1:8085``) points it elsewhere without credentials."""

    def __init__(self, endpoint: str = "") -> None:
        self._endpoint = endpoint
        self._client: Any = None

    def access(self, name: str) -> str:
        """The payload of a secret version, as text."""
        from google.api_core import exceptions as google_errors

        try:
            answer = self._secrets().access_secret_version(name=name, timeout=CALL_TIMEOUT)
        except google_errors.GoogleAPICallError as exc:
            raise UpstreamUnavailable(f"Secret Manager: {name}: {exc.message}") from None
        except Exception as exc:  # no credentials, no network: say what, not the value
            raise UpstreamUnavailable(f"Secret Manager: {name}: {type(exc).__name__}") from None
        data: bytes = answer.payload.data
        return data.decode()

    def _secrets(self) -> Any:
        if self._client is None:
            from google.cloud import secretmanager

            if self._endpoint:
                from google.auth.credentials import AnonymousCredentials

                self._client = secretmanager.SecretManagerServiceClient(
                    transport="rest",
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": self._endpoint},
                )
            else:
                self._client = secretmanager.SecretManagerServiceClient(transport="rest")
        return self._client
