"""Request framing for the http-error toxic: heads found, bodies counted, the rest left alone."""

from __future__ import annotations

import pytest

from chaosrunner.faults.proxy.http import Piece, RequestFramer, error_response, framing_of

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


def feed_all(framer: RequestFramer, *chunks: bytes) -> list[Piece]:
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += framer.feed(chunk)
    return pieces


def test_heads_and_bodies_of_keep_alive_requests() -> None:
    pieces = feed_all(RequestFramer(), GET + POST + GET)
    assert pieces == [
        Piece("head", GET),
        Piece("head", POST[:-5]),
        Piece("data", b"hello"),
        Piece("head", GET),
    ]


def test_a_head_split_across_reads_is_held_until_complete() -> None:
    framer = RequestFramer()
    assert framer.feed(GET[:10]) == []
    assert framer.feed(GET[10:20]) == []
    assert framer.feed(GET[20:]) == [Piece("head", GET)]


def test_a_body_split_across_reads_is_passed_on_as_it_comes() -> None:
    framer = RequestFramer()
    head = POST[:-5]
    assert framer.feed(head + b"he") == [Piece("head", head), Piece("data", b"he")]
    assert framer.feed(b"llo" + GET) == [Piece("data", b"llo"), Piece("head", GET)]


def test_binary_protocols_pass_through_at_once() -> None:
    framer = RequestFramer()
    startup = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # a PostgreSQL SSLRequest
    assert framer.feed(startup) == [Piece("data", startup)]
    assert framer.opaque
    assert framer.feed(GET) == [Piece("data", GET)]  # never framed again


def test_a_text_protocol_that_is_not_http_passes_through_at_its_first_line() -> None:
    framer = RequestFramer()
    assert framer.feed(b"PING\r\n") == [Piece("data", b"PING\r\n")]
    assert framer.opaque


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"CONNECT example:443 HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
    ],
)
def test_what_cannot_be_framed_for_sure_ends_framing_after_its_head(head: bytes) -> None:
    framer = RequestFramer()
    assert framer.feed(head + b"rest") == [Piece("head", head), Piece("data", b"rest")]
    assert framer.opaque


def test_an_oversized_head_is_given_up_on() -> None:
    framer = RequestFramer(max_head=100)
    data = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 200
    assert framer.feed(data) == [Piece("data", data)]
    assert framer.opaque


def test_empty_lines_between_requests_are_tolerated() -> None:
    pieces = feed_all(RequestFramer(), GET + b"\r\n" + GET)
    assert [piece.kind for piece in pieces] == ["head", "data", "head"]


def test_framing_of_reads_content_length() -> None:
    assert framing_of(b"PUT /x HTTP/1.0\r\ncontent-length: 12") == framing_of(
        b"PUT /x HTTP/1.0\r\nContent-Length:12"
    )
    framing = framing_of(b"PUT /x HTTP/1.0\r\nContent-Length: 12")
    assert framing is not None and framing.body_length == 12 and not framing.opaque_after
    assert framing_of(b"\x16\x03\x01 hello") is None


def test_the_injected_answer_is_complete_and_closes_the_connection() -> None:
    answer = error_response(503, "down\n", "checkout-api")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.splitlines()[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"Content-Length: 5" in head and b"Connection: close" in head
    assert b"X-Chaosrunner-Fault: checkout-api" in head
    assert body == b"down\n"
    assert error_response(599, "", "f").startswith(b"HTTP/1.1 599 Injected\r\n")


def test_a_fault_name_cannot_inject_headers() -> None:
    answer = error_response(500, "", "x\r\nSet-Cookie: a=b")
    assert b"\r\nSet-Cookie" not in answer
    assert b"X-Chaosrunner-Fault: x__Set-Cookie__a_b\r\n" in answer
