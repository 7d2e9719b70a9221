"""Just enough HTTP/1.x to answer some requests with an error and pass the rest.

The ``http-error`` toxic decides per request, so the proxy must know where one
request ends and the next begins in the client's byte stream. This module is
an incremental framer for that and nothing more: it finds request heads and
counts ``Content-Length`` bodies. Whatever it cannot frame for sure - a
chunked body, an ``Upgrade``, ``CONNECT``, or a stream that is not HTTP at all
(a PostgreSQL handshake through the same proxy) - it gives up on and passes
through untouched for the rest of the connection: a proxy that breaks the
traffic it does not understand would be a fault of its own.

An answered request closes the connection (``Connection: close``). HTTP/1.1
clients send the next request only after the previous answer arrived, so
nothing is in flight from the dependency at that moment; the client simply
reconnects for its next request, which is what a real failing backend behind
a load balancer looks like too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

MAX_HEAD = 64 * 1024
"""A request head longer than this is not framed (passed through as opaque data)."""

_REQUEST_LINE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/\d\.\d$")
_PRINTABLE = re.compile(rb"^[\x20-\x7e\r\n]*$")
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Piece:
    """A slice of the client's stream: a whole request head, or anything else."""

    kind: Literal["head", "data"]
    data: bytes


@dataclass(frozen=True)
class Framing:
    """What follows a request head."""

    body_length: int
    opaque_after: bool


def framing_of(head: bytes) -> Framing | None:
    """How the body after ``head`` is delimited; None when ``head`` is not an HTTP request."""
    lines = head.split(b"\r\n")
    if not _REQUEST_LINE.match(lines[0]):
        return None
    method = lines[0].split(b" ", 1)[0].upper()
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    if method == b"CONNECT" or b"upgrade" in headers or b"transfer-encoding" in headers:
        return Framing(body_length=0, opaque_after=True)
    length = headers.get(b"content-length", b"0")
    if not length.isdigit():
        return Framing(body_length=0, opaque_after=True)
    return Framing(body_length=int(length), opaque_after=False)


class RequestFramer:
    """Splits a client's byte stream into request heads and the bytes between them."""

    def __init__(self, max_head: int = MAX_HEAD) -> None:
        self._buffer = bytearray()
        self._body_left = 0
        self._opaque = False
        self._max_head = max_head

    @property
    def opaque(self) -> bool:
        """True once the framer has given up: everything is passed through from now on."""
        return self._opaque

    def feed(self, data: bytes) -> list[Piece]:
        if self._opaque:
            return [Piece("data", data)] if data else []
        self._buffer += data
        pieces: list[Piece] = []
        while self._buffer and not self._opaque:
            if self._body_left:
                taken = bytes(self._buffer[: self._body_left])
                del self._buffer[: len(taken)]
                self._body_left -= len(taken)
                pieces.append(Piece("data", taken))
                continue
            if self._buffer.startswith(b"\r\n"):
                # RFC 9112 2.2: a server should ignore empty lines before a request line.
                del self._buffer[:2]
                pieces.append(Piece("data", b"\r\n"))
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if not self._could_be_a_head():
                    pieces.extend(self._give_up())
                break
            head = bytes(self._buffer[: end + 4])
            framing = framing_of(head[:-4])
            if framing is None:
                pieces.extend(self._give_up())
                break
            del self._buffer[: end + 4]
            pieces.append(Piece("head", head))
            self._body_left = framing.body_length
            if framing.opaque_after:
                pieces.extend(self._give_up())
        return [piece for piece in pieces if piece.data]

    def _could_be_a_head(self) -> bool:
        """Whether the incomplete buffer may still become a request head.

        Decided early so a binary protocol is never held back waiting for a
        blank line that will not come (the client would wait for an answer
        and the connection would hang).
        """
        if len(self._buffer) > self._max_head or not _PRINTABLE.match(self._buffer):
            return False
        first_line, newline, _ = bytes(self._buffer).partition(b"\r\n")
        return not newline or bool(_REQUEST_LINE.match(first_line))

    def _give_up(self) -> list[Piece]:
        self._opaque = True
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [Piece("data", rest)]


def error_response(status: int, body: str, fault: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, tagged with the fault's name."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Injected"
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n"
        f"X-Chaosrunner-Fault: {_NOT_TOKEN.sub('_', fault)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + payload
