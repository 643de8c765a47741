"""A TCP proxy on 127.0.0.1 that a test can cut and restore, to take a database away."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.support import free_port


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream``, one thread pair per connection.

    ``cut`` stops listening and closes every connection, as if the network went
    away; ``restore`` listens again on the same port.
    """

    def __init__(self, upstream_host: str, upstream_port: int, port: int | None = None) -> None:
        # A host that is a directory means Postgres' unix socket in it (the
        # embedded server listens on nothing else).
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cut()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2

    def restore(self) -> None:
        """Listen (again) and forward new connections."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._stop = threading.Event()
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._stop), name="proxy-accept", daemon=True
        )
        self._acceptor.start()

    def cut(self) -> None:
        """Stop listening and drop every open connection, both ends."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = _connect(*self.upstream)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if stop.is_set():
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _connect(host: str, port: int) -> socket.socket:
    if host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(f"{host}/.s.PGSQL.{port}")
        return sock
    return socket.create_connection((host, port), timeout=5)
