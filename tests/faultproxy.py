"""A TCP proxy on loopback that can stop answering, to put a server "behind a black hole".

``forward``: bytes pass both ways. ``refuse``: nothing listens. ``blackhole``: new connections
are accepted and never answered, and bytes on existing ones are swallowed (the peer's kernel
still acknowledges them, exactly like a hung server or a stalled network path). Used by the
tests and ``benchmarks/faults.py``; :func:`refused_port` gives a port nobody listens on.
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType


class FaultProxy:
    """Listen on 127.0.0.1:<port> and forward to ``target`` unless told to black-hole."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = None
            if self.mode == "forward":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
            with self._lock:
                self._sockets += [client] + ([upstream] if upstream else [])
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket | None) -> None:
        ends = [client] + ([upstream] if upstream else [])
        try:
            while not self._closed:
                readable, _, _ = select.select(ends, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode == "forward" and upstream is not None:
                        (upstream if sock is client else client).sendall(data)
        except (OSError, ValueError):
            # Dropped by refuse() or close() from another thread: a closed socket's descriptor
            # is -1, which select() rejects with ValueError.
            return
        finally:
            for sock in ends:
                sock.close()

    def refuse(self) -> None:
        """Stop listening and drop every connection: the server is down (connection refused)."""
        self.mode = "refuse"
        self._listener.close()
        self._drop()

    def forward(self) -> None:
        """Pass bytes again (listening again on the same port after :meth:`refuse`)."""
        if self.mode == "refuse":
            self._listener = socket.create_server(("127.0.0.1", self.port))
            threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()
        self.mode = "forward"

    def _drop(self) -> None:
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            self._sockets.clear()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        self._listener.close()
        self._drop()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def refused_port() -> int:
    """A loopback port with nothing listening (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
