"""What a request must show before the server does anything with it.

Pure functions of the request's headers, checked in this order, so a refusal
never costs reading a body:

1. ``Host`` names the address the server listens on (403 otherwise). A
   DNS-rebinding page reaches us under *its* host name; refusing foreign Host
   headers is what keeps it from reading or writing through the facilitator's
   browser.
2. ``Origin``, when a browser sends one, is the server's own (403
   otherwise): a page elsewhere may not post into the run.
3. ``Authorization: Bearer <one of the run's tokens>`` (401 otherwise),
   on every route but the console's page shell (``PUBLIC_PATHS``: the page
   and its script and style, which carry no run data), on every listening
   address. Which token it is decides the request's ``Capability``; each
   route says which it needs (403 otherwise), and an observer's token never
   writes (403 on any method but GET and HEAD, before any route runs).
4. For a body: ``Content-Type: application/json`` (415 otherwise - an HTML
   form can only send form encodings or ``text/plain``), and a plain
   ``Content-Length`` of at most ``MAX_BODY`` (400 when it is not a number,
   411 when absent or chunked, 413 when larger).

A route that a chat platform calls (``app.SignedRoute``: the slash
commands) skips 1-3: Slack's and Mattermost's servers reach it through the
team's TLS proxy under the public name, with no run token. The platform's
signature or command token authenticates it instead, checked by the route
after ``check_form_body`` bounds the body; DNS rebinding gains nothing there,
since a browser cannot sign.

and, once the body is read, ``too_deep`` bounds JSON nesting before
``json.loads`` ever recurses into it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosrunner.errors import UsageError
from chaosrunner.gameday.server.token import Capability, RunToken, RunTokens

MAX_BODY = 64 * 1024
MAX_FORM = 16 * 1024  # a slash command is a dozen short fields; Slack caps the text far below this
MAX_DEPTH = 4  # a mark is one flat object; a little room, no more
WILDCARDS = {"0.0.0.0", "::", ""}
_LENGTH = re.compile(r"[0-9]{1,12}")
# A host and port, nothing else: no userinfo (``evil@127.0.0.1``), path or spaces to smuggle a name past us.
_AUTHORITY = re.compile(r"[A-Za-z0-9.:\[\]-]{1,262}")

RawHeaders = Iterable[tuple[bytes, bytes]]

# The console's page shell: the same for everyone, no run data in it, so no token (a browser
# cannot send one when it opens a link). The Host check still applies.
PUBLIC_PATHS = frozenset({"/", "/static/console.js", "/static/console.css"})
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


def header_values(headers: RawHeaders, name: str) -> list[str]:
    wanted = name.encode("ascii")
    return [value.decode("latin-1").strip() for key, value in headers if key.lower() == wanted]


def _one(headers: RawHeaders, name: str) -> str | Refusal | None:
    values = header_values(headers, name)
    if len(values) > 1:
        return Refusal(400, f"more than one {name} header")
    return values[0] if values else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Access:
    """Who may talk to a server bound at ``host``:``port`` holding ``token``.

    The names a request may use for the server: the address it was bound
    with and the address the socket got; ``localhost`` too for a loopback
    bind. A wildcard bind (``0.0.0.0``, ``::``) is reached by whichever
    address the client routes to, so any IP literal is accepted, plus this
    machine's own names - never an arbitrary DNS name, which is what a
    rebinding attack needs.
    """

    def __init__(
        self,
        host: str,
        bound_address: str,
        port: int,
        tokens: RunTokens | RunToken,
        public_url: PublicUrl | None = None,
    ) -> None:
        self.port = port
        self.public = public_url
        # A single token (a tool serving one audience) is the facilitator's: it may do everything.
        self.tokens = (
            tokens.by_capability() if isinstance(tokens, RunTokens) else {Capability.FACILITATOR: tokens}
        )
        self.wildcard = host in WILDCARDS
        names = {host.lower().strip("[]"), bound_address.lower()}
        if self.wildcard:
            names |= {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        elif _is_ip(bound_address) and ipaddress.ip_address(bound_address).is_loopback:
            names.add("localhost")
        self.names = frozenset(name for name in names if name and name not in WILDCARDS)

    def _known(self, hostname: str | None, port: int | None) -> bool:
        if hostname is None or (port or 80) != self.port:
            return False
        return hostname in self.names or (self.wildcard and _is_ip(hostname))

    def _is_public(self, scheme: str, hostname: str | None, port: int | None) -> bool:
        """The name and origin the team's TLS proxy serves us under (``--public-url``)."""
        public = self.public
        return (
            public is not None
            and scheme == public.scheme
            and hostname == public.host
            and (port or DEFAULT_PORTS[scheme]) == public.port
        )

    def check(self, headers: RawHeaders) -> Refusal | None:
        """Address and token: None when the request may go on (with any capability)."""
        refusal = self.check_address(headers)
        if refusal is not None:
            return refusal
        granted = self.authenticate(headers)
        return granted if isinstance(granted, Refusal) else None

    def check_address(self, headers: RawHeaders) -> Refusal | None:
        """Host and Origin name this server."""
        host = _one(headers, "host")
        if isinstance(host, Refusal):
            return host
        if host is None or not _AUTHORITY.fullmatch(host):
            return Refusal(403, "the Host header does not name this server")
        hostname, port = _split_host("//" + host)
        # Behind the proxy the Host is the public name; the scheme is the proxy's, so either port fits.
        if not self._known(hostname, port) and not any(
            self._is_public(scheme, hostname, port) for scheme in DEFAULT_PORTS
        ):
            return Refusal(403, "the Host header does not name this server")
        origin = _one(headers, "origin")
        if isinstance(origin, Refusal):
            return origin
        if origin is not None:
            scheme, _, authority = origin.partition("://")
            hostname, port = _split_host("//" + authority)
            ours = (scheme == "http" and self._known(hostname, port)) or self._is_public(
                scheme, hostname, port
            )
            if not _AUTHORITY.fullmatch(authority) or not ours:
                return Refusal(403, "cross-origin requests are refused")
        return None

    def authenticate(self, headers: RawHeaders) -> Capability | Refusal:
        """The capability of the one Bearer token presented (compared in constant time against each)."""
        values = [
            value.encode("latin-1")
            for value in header_values(headers, "authorization")
            if value[:7].lower() == "bearer "
        ]
        granted = None
        if len(values) == 1:
            presented = values[0][7:].strip()
            for capability, token in self.tokens.items():  # every one, whichever matches
                if token.matches(presented):
                    granted = capability
        if granted is None:
            return Refusal(401, "send the run's token: Authorization: Bearer <token>")
        return granted


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PublicUrl:
    """Where people reach the server through a TLS proxy: ``https://gameday.example.net[:port]``."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PublicUrl:
        """A UsageError naming ``--public-url`` for anything but a scheme, a host and a port."""
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError:
            parts, port = None, None
        if (
            parts is None
            or parts.scheme not in DEFAULT_PORTS
            or not parts.hostname
            or parts.username is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise UsageError(
                f"--public-url {text!r}: expected the proxy's origin, e.g. https://gameday.example.net"
            )
        return cls(parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme])

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def permits(granted: Capability, needed: Capability) -> Refusal | None:
    """A 403 naming what is needed, when ``granted`` is less."""
    if granted >= needed:
        return None
    if granted is Capability.OBSERVER:
        return Refusal(403, "the observer link can watch, not act")
    return Refusal(403, f"this needs the {needed.label}'s link")


def _split_host(text: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(text)
        return parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a broken IPv6 literal
        return None, None


def check_json_body(headers: RawHeaders) -> Refusal | None:
    """Content-Type and Content-Length of a body we are about to read - from the headers alone."""
    kind = _one(headers, "content-type")
    if isinstance(kind, Refusal):
        return kind
    media, _, params = (kind or "").partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params.strip() else "utf-8"
    if media.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        return Refusal(415, "send the body as Content-Type: application/json")
    return _check_length(headers, MAX_BODY)


def check_form_body(headers: RawHeaders) -> Refusal | None:
    """The same for a chat platform's slash command: a URL-encoded form of at most ``MAX_FORM``."""
    kind = _one(headers, "content-type")
    if isinstance(kind, Refusal):
        return kind
    if (kind or "").partition(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return Refusal(415, "send the body as Content-Type: application/x-www-form-urlencoded")
    return _check_length(headers, MAX_FORM)


def _check_length(headers: RawHeaders, limit: int) -> Refusal | None:
    if header_values(headers, "transfer-encoding"):
        return Refusal(411, "send a Content-Length; chunked bodies are refused")
    length = _one(headers, "content-length")
    if isinstance(length, Refusal):
        return length
    if length is None:
        return Refusal(411, "send a Content-Length")
    if not _LENGTH.fullmatch(length):
        return Refusal(400, "Content-Length must be a non-negative whole number")
    if int(length) > limit:
        return Refusal(413, f"the body is larger than {limit // 1024} KiB")
    return None


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when JSON brackets nest deeper than ``limit`` (brackets inside strings do not count)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False
