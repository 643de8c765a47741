"""uvicorn's HTTP protocol with a deadline on each request's arrival: a
connection whose request has not wholly arrived within the request timeout of
the connection opening (or of the previous answer) is closed. Without it a
client that sends nothing, half a header block or half a body holds its
connection (and a file descriptor) for ever; enough of them stop all intake.
A request being answered is not limited: the deadline ends once it has arrived.

It also caps the connections a process holds below its file-descriptor limit
(``connection_cap``): one over the cap is answered 503 with Retry-After and
closed at once, so that a flood of connections can never leave the process
without a descriptor for its database, and a provider knows to come back."""

from __future__ import annotations

import asyncio
import itertools
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
# Set with REQUEST_TIMEOUT_SECONDS: the connections a process holds at most.
CONNECTION_CAP = 10_000
# When a connection over the cap should try again: by then idle connections
# have had time to be closed by their deadline.
FULL_RETRY_AFTER_SECONDS = 5
_FULL_BODY = (b'{"error":"overloaded","detail":"too many connections are open: nothing was '
              b'recorded; retry after Retry-After"}')  # fmt: skip
FULL_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    + f"retry-after: {FULL_RETRY_AFTER_SECONDS}\r\n".encode()
    + f"connection: close\r\ncontent-length: {len(_FULL_BODY)}\r\n\r\n".encode()
    + _FULL_BODY
)


def connection_cap() -> int:
    """How many connections (and requests in flight) a process takes before it
    answers 503: below its file-descriptor limit, so that a flood of idle
    connections can never leave it without one for the database."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(64, soft - RESERVED_DESCRIPTORS)


# Connections refused over the cap, for the occasional log line.
_refused = itertools.count(1)


class DeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within REQUEST_TIMEOUT_SECONDS."""

    _deadline: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > CONNECTION_CAP:
            # Counted, not logged one by one: a flood would flood the log too.
            refused = next(_refused)
            if refused == 1 or refused % 1000 == 0:
                extra = {"cap": CONNECTION_CAP, "refused_so_far": refused}
                log.warning("connections over the cap answered 503", extra=extra)
            transport.write(FULL_ANSWER)
            transport.close()
            return
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
