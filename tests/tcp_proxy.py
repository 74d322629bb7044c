"""A TCP forwarder on loopback: the network path to a real server, which a test opens
and cuts to make that server reachable or not (an outage without stopping it)."""

from __future__ import annotations

import contextlib
import socket
import threading


class Proxy:
    """A TCP forwarder from a loopback port to PostgreSQL: the store's network path,
    which a test opens (and closes) to make the store reachable or not."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self._server = socket.create_server(("127.0.0.1", port))
        self._target = target
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for s in self._sockets:
            s.close()
