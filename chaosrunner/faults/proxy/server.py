"""The fault proxy: relays TCP connections and applies the toxics on the way.

One asyncio loop in one background thread, standard library only, because the
proxy runs inside a holder process (and inside a container's network
namespace): it has to start fast and depend on nothing the target lacks.

Each accepted connection gets an upstream connection and two pumps, one per
direction. A pump reads a chunk, stamps when it may leave (latency, jitter),
queues it, and a sender writes it out at that time, paced (bandwidth). Stalls
stop the reading, resets abort both sockets with an RST, and an ``http-error``
toxic answers a request head instead of forwarding it. The toxics are read
from the board on every chunk, so switching one on or off acts on live
connections at once.

The upstream is either fixed (``proxy.*`` kinds: listen here, relay there) or
the connection's *original destination* (the transparent mode of
``docker.network-latency``: iptables REDIRECTs the container's outbound
connections here, and ``SO_ORIGINAL_DST`` says where they were going). In
that mode the proxy marks its own upstream sockets (``SO_MARK``) so the
RETURN rule ahead of the REDIRECT lets them out instead of looping them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosrunner.errors import FaultError
from chaosrunner.faults.proxy.http import Piece, RequestFramer, error_response
from chaosrunner.faults.proxy.toxics import Direction, Reset, Stall, ToxicSet

SO_ORIGINAL_DST = 80
"""From linux/netfilter_ipv4.h; Python does not name it."""

CHUNK = 64 * 1024
QUEUED_CHUNKS = 64
"""Per direction; a full queue stops reading, so a slow side slows the fast one (TCP backpressure)."""

UPSTREAM_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"expected host:port, found {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def original_destination(sock: socket.socket) -> Address:
    """Where a REDIRECTed connection was going (IPv4 ``SO_ORIGINAL_DST``)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    return parse_sockaddr_in(raw)


def parse_sockaddr_in(raw: bytes) -> Address:
    """``struct sockaddr_in``: family (host order), port (network order), IPv4 address."""
    (port,) = struct.unpack("!H", raw[2:4])
    return Address(socket.inet_ntoa(raw[4:8]), port)


def abort_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close so the peer sees a TCP RST (linger 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Ended(Exception):
    """Ends a relay early (reset, stall timeout, answered request); not an error."""


class ToxicBoard:
    """The toxics in force, swapped whole; waiters wake when they change. Loop thread only."""

    def __init__(self, toxics: ToxicSet) -> None:
        self.current = toxics
        self._changed = asyncio.Event()

    def replace(self, toxics: ToxicSet) -> None:
        self.current = toxics
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class ProxyServer:
    """A TCP proxy with toxics, running its own loop in a background thread."""

    def __init__(
        self,
        listen: Address,
        toxics: ToxicSet,
        *,
        upstream: Address | None = None,
        mark: int | None = None,
        fault: str = "proxy",
        rng: random.Random | None = None,
    ) -> None:
        """``upstream=None`` means transparent: relay to each connection's original destination."""
        self.listen = listen
        self.upstream = upstream
        self.mark = mark
        self.fault = fault
        self.counts: Counter[str] = Counter()
        self._initial = toxics
        self.rng = rng or random.Random()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"proxy {listen}", daemon=True)
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None
        self._board: ToxicBoard | None = None
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.address: Address | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 10.0) -> Address:
        """Bind and start relaying; returns the bound address (port 0 picks a free one)."""
        self._thread.start()
        if not self._bound.wait(timeout):
            raise FaultError(f"fault proxy on {self.listen} did not start within {timeout:g}s")
        if self._bind_error is not None:
            raise FaultError(f"fault proxy cannot listen on {self.listen}: {self._bind_error}")
        assert self.address is not None
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every relayed connection, end the thread. Idempotent."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._shutdown()))
            self._thread.join(timeout)

    def replace_toxics(self, toxics: ToxicSet, timeout: float = 5.0) -> None:
        """Switch to another toxic set (from any thread); returns once live connections see it."""
        self._in_loop(lambda board: board.replace(toxics), timeout)

    def snapshot_counts(self, timeout: float = 5.0) -> dict[str, int]:
        """The counters, copied inside the loop so no relay changes them mid-copy."""
        counts: dict[str, int] = {}
        self._in_loop(lambda _: counts.update(self.counts), timeout)
        return counts

    def _in_loop(self, action: Callable[[ToxicBoard], None], timeout: float) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                if self._board is not None:
                    action(self._board)
            finally:
                done.set()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(run)
            done.wait(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._bind())
        except OSError as exc:
            self._bind_error = exc
        finally:
            self._bound.set()
        if self._bind_error is None:
            self._loop.run_forever()
        self._loop.close()

    async def _bind(self) -> None:
        self._board = ToxicBoard(self._initial)
        self._server = await asyncio.start_server(
            self._accepted, self.listen.host, self.listen.port, reuse_address=True, limit=CHUNK
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = Address(host, port)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        self._loop.stop()

    # ---------------------------------------------------------------- relaying

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            await _Relay(self, reader, writer).run()
        except asyncio.CancelledError:
            abort_with_reset(writer)
        finally:
            self._relays.discard(task)

    @property
    def board(self) -> ToxicBoard:
        assert self._board is not None
        return self._board

    def destination(self, client: asyncio.StreamWriter) -> Address | None:
        """Where to relay this client; None when it must not be relayed."""
        if self.upstream is not None:
            return self.upstream
        sock = client.get_extra_info("socket")
        try:
            target = original_destination(sock)
        except OSError:
            return None  # not redirected: somebody connected to the proxy port directly
        local = Address(*client.get_extra_info("sockname")[:2])
        return None if target == local else target

    async def open_upstream(self, target: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        family, sockaddr = await _resolve(target)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if self.mark is not None:
                # Exempt from our own REDIRECT rule (a RETURN on this mark precedes it).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), UPSTREAM_CONNECT_TIMEOUT)
            return await asyncio.open_connection(sock=sock, limit=CHUNK)
        except BaseException:
            sock.close()
            raise


async def _resolve(target: Address) -> tuple[int, Any]:
    """Family and socket address; a literal IP skips getaddrinfo (a thread hop on every connection)."""
    try:
        ip = ipaddress.ip_address(target.host)
    except ValueError:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        return infos[0][0], infos[0][4]
    if ip.version == 4:
        return socket.AF_INET, (target.host, target.port)
    return socket.AF_INET6, (target.host, target.port, 0, 0)


class _Relay:
    """One client connection and its upstream: two pumps and the per-connection dice."""

    def __init__(
        self, proxy: ProxyServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._fates: dict[str, bool] = {}
        self._stalled_since: float | None = None

    async def run(self) -> None:
        proxy = self.proxy
        proxy.counts["connections"] += 1
        pumps: list[asyncio.Task[None]] = []
        try:
            await self._relay(pumps)
        except _Ended:
            pass
        except (ConnectionError, OSError):
            proxy.counts["broken"] += 1
            self._abort()
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._close()

    async def _relay(self, pumps: list[asyncio.Task[None]]) -> None:
        """Connect upstream and run both pumps (added to ``pumps``, which ``run`` cleans up)."""
        proxy = self.proxy
        client_reader, client_writer = self.client
        self._check_reset()
        await self._while_stalled()
        target = proxy.destination(client_writer)
        if target is None:
            proxy.counts["refused"] += 1
            abort_with_reset(client_writer)
            return
        # Read the client while the upstream connects: the delay counts from the data's
        # arrival, not from when the upstream happened to be ready.
        upstream_writer: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()
        framer = RequestFramer() if proxy.board.current.inspects_http() else None
        pumps.append(
            asyncio.create_task(self._pump(Direction.UPSTREAM, client_reader, upstream_writer, framer))
        )
        try:
            self.upstream = await proxy.open_upstream(target)
        except (OSError, TimeoutError):
            proxy.counts["upstream_failures"] += 1
            abort_with_reset(client_writer)
            return
        upstream_writer.set_result(self.upstream[1])
        pumps.append(
            asyncio.create_task(self._pump(Direction.DOWNSTREAM, self.upstream[0], client_writer, None))
        )
        await asyncio.gather(*pumps)

    # -------------------------------------------------------------- the dice

    def _struck(self, toxic: Reset | Stall) -> bool:
        """Whether this connection is one of the toxic's ``fraction``; drawn once per connection."""
        if toxic.name not in self._fates:
            self._fates[toxic.name] = toxic.hits(self.proxy.rng)
        return self._fates[toxic.name]

    def _check_reset(self) -> None:
        reset = self.proxy.board.current.reset()
        if reset is not None and self._struck(reset):
            self.proxy.counts["resets"] += 1
            self._abort()
            raise _Ended

    async def _while_stalled(self) -> bool:
        """Wait while a stall toxic holds this connection; True if it had to wait."""
        loop = asyncio.get_running_loop()
        waited = False
        while True:
            stall = self.proxy.board.current.stall()
            if stall is None or not self._struck(stall):
                self._stalled_since = None
                return waited
            waited = True
            if self._stalled_since is None:
                self._stalled_since = loop.time()
                self.proxy.counts["stalls"] += 1
            timeout = None
            if stall.close_after is not None:
                timeout = self._stalled_since + stall.close_after - loop.time()
                if timeout <= 0:
                    self._abort()
                    raise _Ended
            await self.proxy.board.wait_change(timeout)

    # -------------------------------------------------------------- the pumps

    async def _pump(
        self,
        flow: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | asyncio.Future[asyncio.StreamWriter],
        framer: RequestFramer | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUED_CHUNKS)
        sender = asyncio.create_task(self._send(flow, queue, writer))
        previous_due = 0.0
        try:
            while True:
                await self._while_stalled()
                data = await reader.read(CHUNK)
                now = loop.time()  # the delay counts from arrival...
                if not data:
                    break
                self._check_reset()
                if await self._while_stalled():
                    now = loop.time()  # ...or from the end of a stall that held it
                pieces = framer.feed(data) if framer is not None else [Piece("data", data)]
                for piece in pieces:
                    if piece.kind == "head":
                        await self._maybe_answer(piece.data)
                    latency = self.proxy.board.current.latency(flow)
                    due = (
                        latency.due(now, previous_due, self.proxy.rng) if latency else max(now, previous_due)
                    )
                    previous_due = due
                    await queue.put((due, piece.data))
            await queue.put(None)
            await sender
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send(
        self,
        flow: Direction,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        destination: asyncio.StreamWriter | asyncio.Future[asyncio.StreamWriter],
    ) -> None:
        loop = asyncio.get_running_loop()
        writer = destination if isinstance(destination, asyncio.StreamWriter) else await destination
        while (item := await queue.get()) is not None:
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._write_paced(flow, writer, data)
        if writer.can_write_eof():
            # Half-close: the other direction may still be answering.
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def _write_paced(self, flow: Direction, writer: asyncio.StreamWriter, data: bytes) -> None:
        view = memoryview(data)
        while view:
            bandwidth = self.proxy.board.current.bandwidth(flow)
            size = bandwidth.slice_size() if bandwidth else len(view)
            writer.write(view[:size])
            await writer.drain()
            self.proxy.counts[f"bytes_{flow.value}"] += len(view[:size])
            if bandwidth:
                await asyncio.sleep(bandwidth.pause_for(len(view[:size])))
            view = view[size:]

    async def _maybe_answer(self, head: bytes) -> None:
        """Answer a request head with the http-error toxic's status, if the dice say so."""
        toxic = self.proxy.board.current.http_error()
        if toxic is None or not toxic.hits(self.proxy.rng):
            return
        self.proxy.counts["http_errors"] += 1
        client_writer = self.client[1]
        client_writer.write(error_response(toxic.status, toxic.body, self.proxy.fault))
        with contextlib.suppress(OSError):
            await client_writer.drain()
        raise _Ended

    # -------------------------------------------------------------- endings

    def _abort(self) -> None:
        abort_with_reset(self.client[1])
        if self.upstream is not None:
            abort_with_reset(self.upstream[1])

    def _close(self) -> None:
        for writer in (self.client[1], self.upstream[1] if self.upstream else None):
            if writer is not None and not writer.is_closing():
                writer.close()
