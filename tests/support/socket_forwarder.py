"""A unix-socket forwarder a test can cut: a real daemon behind a connection that fails on demand.

``SocketForwarder(listen_path, upstream_path)`` accepts connections on
``listen_path`` and copies bytes both ways to ``upstream_path`` (say, the real
``/var/run/docker.sock``). ``cut()`` removes the socket and drops every open
connection, so a client's next call fails exactly as if the daemon's socket
had gone away; ``restore()`` listens again on the same path. Nothing of the
daemon is faked: every request that gets through reaches the real one.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path


class SocketForwarder:
    def __init__(self, listen_path: Path, upstream_path: str) -> None:
        self.listen_path = listen_path
        self.upstream_path = upstream_path
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Event()

    @property
    def url(self) -> str:
        return f"unix://{self.listen_path}"

    def start(self) -> SocketForwarder:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.listen_path))
        os.chmod(self.listen_path, 0o600)
        listener.listen(64)
        self._listener = listener
        self._accepting.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Stop accepting, remove the socket file and drop every open connection."""
        self._accepting.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.listen_path.unlink(missing_ok=True)
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    restore = start
    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.upstream_path)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                ready, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return  # cut, or a side closed
        finally:
            with self._lock:
                for sock in (client, upstream):
                    self._open.discard(sock)
                    sock.close()
