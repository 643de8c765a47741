"""A stand-in for SendGrid and Authorize.net on 127.0.0.1: it records every
request and answers as a test tells it to (then as the real provider does)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

BOM = b"\xef\xbb\xbf"
# Answer instead of a status: close the connection without answering.
DROP = -1
# A body that stands for the request itself: the answer echoes its headers and
# body back, as careless error pages do.
ECHO = b"<echo the request>"


class Seen(NamedTuple):
    path: str
    headers: dict[str, str]
    body: Any


def anet_answer(result: str = "Ok", error_code: str | None = None, ref_id: str = "") -> bytes:
    """An Authorize.net createTransactionResponse, BOM first as the real one sends it."""
    if result == "Ok":
        messages = [{"code": "I00001", "text": "Successful."}]
        transaction: dict[str, Any] = {"responseCode": "1", "transId": "60000000001"}
    else:
        messages = [{"code": "E00027", "text": "The transaction was unsuccessful."}]
        transaction = {
            "responseCode": "3",
            "errors": [{"errorCode": error_code or "54", "errorText": "Refused."}],
        }
    doc = {
        "transactionResponse": transaction,
        "refId": ref_id,
        "messages": {"resultCode": result, "message": messages},
    }
    return BOM + json.dumps(doc).encode()


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (its timeout, a hang drill) is expected here: its
    broken connection is not a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeProvider:
    """Answers queued with ``answer`` first, then 202 for SendGrid and an "Ok"
    refund for Authorize.net. ``delay`` slows every answer down."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.delay = 0.0
        self._answers: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, *answers: tuple[int, bytes]) -> None:
        """Give these answers (status, body), in order, to the next requests."""
        with self._lock:
            self._answers.extend(answers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, seen: Seen) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(seen)
            if self._answers:
                status, body = self._answers.popleft()
                if body == ECHO:
                    echoed = {"error": "bad request", "headers": seen.headers, "body": seen.body}
                    body = json.dumps(echoed).encode()
                return status, body
        if seen.path.startswith("/xml/"):
            ref_id = seen.body["createTransactionRequest"]["refId"]
            return 200, anet_answer(ref_id=ref_id)
        return 202, b""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = fake._next(Seen(self.path, headers, json.loads(raw)))
                time.sleep(fake.delay)
                if status == DROP:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
