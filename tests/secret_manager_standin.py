"""A local stand-in for Secret Manager's REST API, NOT an emulator: no Secret
Manager emulator runs on Python 3.11, so this answers the one route the official
client's REST transport calls to read a secret,
``GET /v1/projects/P/secrets/S/versions/V:access``, with the JSON the real API
gives (``name``, ``payload.data`` base64, ``payload.dataCrc32c``). The adapter
under test is the real google-cloud-secret-manager client."""

from __future__ import annotations

import base64
import re
import zlib

from tests.standin_http import JsonHandler, StandInServer

_ROUTE = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access$")


class SecretManagerStandIn(StandInServer):
    """Secrets by (project, secret) as lists of versions; ``latest`` is the last."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], list[str]] = {}
        self.reads = 0
        standin = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                found = _ROUTE.match(self.path.split("?", 1)[0])
                value = standin.lookup(*found.groups()) if found else None
                if found is None or value is None:
                    self._answer(404, {"error": {"code": 404, "message": "Secret not found",
                                                 "status": "NOT_FOUND"}})  # fmt: skip
                    return
                standin.reads += 1
                data = value.encode()
                project, secret, version = found.groups()
                self._answer(200, {
                    "name": f"projects/{project}/secrets/{secret}/versions/{version}",
                    "payload": {
                        "data": base64.b64encode(data).decode(),
                        # CRC32C in the real API; the client does not check it.
                        "dataCrc32c": str(zlib.crc32(data)),
                    },
                })  # fmt: skip

        super().__init__(Handler)

    def put(self, project: str, secret: str, value: str) -> None:
        """Add a version (it becomes ``latest``)."""
        self.versions.setdefault((project, secret), []).append(value)

    def lookup(self, project: str, secret: str, version: str) -> str | None:
        versions = self.versions.get((project, secret), [])
        if version == "latest":
            return versions[-1] if versions else None
        if version.isdigit() and 1 <= int(version) <= len(versions):
            return versions[int(version) - 1]
        return None
