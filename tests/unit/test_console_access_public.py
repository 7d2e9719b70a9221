"""Behind the team's TLS proxy, and on automated runs: who the run's server lets in.

``--public-url https://gameday.example.net`` names the origin people reach the
console under: its Host and its https Origin are this server's too (the
page's posts from behind the proxy would be refused as cross-origin
otherwise), and nothing else is. An automated run serves the page read-only:
only the observer's token opens it, and nothing can be posted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.errors import UsageError
from chaosrunner.gameday.server.guards import Access, PublicUrl, Refusal
from chaosrunner.gameday.server.token import Capability, RunTokens

PORT = 8765


def headers(host: str, origin: str | None = None, token: str | None = None) -> list[tuple[bytes, bytes]]:
    found = [(b"host", host.encode())]
    if origin is not None:
        found.append((b"origin", origin.encode()))
    if token is not None:
        found.append((b"authorization", f"Bearer {token}".encode()))
    return found


@pytest.fixture
def tokens() -> RunTokens:
    return RunTokens.new()


@pytest.fixture
def behind_proxy(tokens: RunTokens) -> Access:
    return Access("127.0.0.1", "127.0.0.1", PORT, tokens, PublicUrl.parse("https://Gameday.Example.net"))


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("gameday.example.net", "https://gameday.example.net"),
        ("gameday.example.net:443", "https://gameday.example.net:443"),
        ("127.0.0.1:8765", "http://127.0.0.1:8765"),  # the room on the machine itself still works
        ("gameday.example.net", None),
    ],
)
def test_the_proxys_name_and_origin_are_this_servers(
    behind_proxy: Access, tokens: RunTokens, host: str, origin: str | None
) -> None:
    assert behind_proxy.check(headers(host, origin, tokens.team.value)) is None


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("gameday.example.net", "http://gameday.example.net"),  # not the scheme people use
        ("gameday.example.net", "https://gameday.example.net:8443"),
        ("gameday.example.net", "https://evil.example"),
        ("evil.example", "https://gameday.example.net"),
        ("gameday.example.net:8443", None),
    ],
)
def test_anything_else_is_still_refused(
    behind_proxy: Access, tokens: RunTokens, host: str, origin: str | None
) -> None:
    refusal = behind_proxy.check(headers(host, origin, tokens.facilitator.value))
    assert isinstance(refusal, Refusal) and refusal.status == 403


def test_without_a_public_url_an_https_origin_is_cross_origin(tokens: RunTokens) -> None:
    access = Access("127.0.0.1", "127.0.0.1", PORT, tokens)
    refusal = access.check(headers("127.0.0.1:8765", "https://127.0.0.1:8765", tokens.team.value))
    assert isinstance(refusal, Refusal) and refusal.status == 403


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://gameday.example.net", "https://gameday.example.net"),
        ("https://gameday.example.net/", "https://gameday.example.net"),
        ("https://gameday.example.net:8443", "https://gameday.example.net:8443"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
    ],
)
def test_a_public_url_is_an_origin(text: str, origin: str) -> None:
    assert PublicUrl.parse(text).origin == origin


@pytest.mark.parametrize(
    "text",
    [
        "gameday.example.net",
        "ftp://x.example",
        "https://",
        "https://u:p@x.example",
        "https://x.example/a",
        "https://x.example:99999",
    ],
)
def test_anything_but_an_origin_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--public-url"):
        PublicUrl.parse(text)


def test_a_read_only_run_honours_the_observers_token_alone(tmp_path: Path) -> None:
    tokens = RunTokens.new(read_only=True)
    access = Access("127.0.0.1", "127.0.0.1", PORT, tokens)
    assert access.authenticate(headers("127.0.0.1:8765", token=tokens.observer.value)) is Capability.OBSERVER
    for other in (tokens.facilitator, tokens.team):
        refused = access.authenticate(headers("127.0.0.1:8765", token=other.value))
        assert isinstance(refused, Refusal) and refused.status == 401
    written = tokens.write(tmp_path)
    assert [path.name for path in written] == ["observer-token"]
