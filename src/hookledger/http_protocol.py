"""uvicorn's HTTP protocol with a deadline on each request's arrival: a
connection whose request has not wholly arrived within the request timeout of
the connection opening (or of the previous answer) is closed. Without it a
client that sends nothing, half a header block or half a body holds its
connection (and a file descriptor) for ever; enough of them stop all intake.
A request being answered is not limited: the deadline ends once it has arrived."""

from __future__ import annotations

import asyncio
import logging
import resource
from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# Set by each server process's composition root (wiring.app_from_env) from
# HOOKLEDGER_REQUEST_TIMEOUT, before it accepts a connection.
REQUEST_TIMEOUT_SECONDS = 30.0
# Descriptors kept back from the connection cap: the database pool, the
# listening socket, logs, the embedded Postgres' pipes.
RESERVED_DESCRIPTORS = 128


def connection_cap() -> int:
    """How many connections (and requests in flight) a process takes before it
    answers 503: below its file-descriptor limit, so that a flood of idle
    connections can never leave it without one for the database."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(64, soft - RESERVED_DESCRIPTORS)


class DeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within REQUEST_TIMEOUT_SECONDS."""

    _deadline: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT_SECONDS, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning("connection closed: its request did not arrive in time",
                        extra={"timeout_seconds": REQUEST_TIMEOUT_SECONDS})  # fmt: skip
            self.transport.close()
