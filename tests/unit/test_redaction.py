"""Credentials recognised by their shape are scrubbed; the words around them stay."""

from __future__ import annotations

import io
import logging
import time

import pytest

from chaosrunner.redaction import REDACTED, RedactingFilter, redact_fields, redact_text, redact_url

R = REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # libpq key=value DSNs, plain and quoted
        ("host=db user=app password=hunter2 dbname=x", f"host=db user=app password={R} dbname=x"),
        ("host=db password='two words' dbname=x", f"host=db password={R} dbname=x"),
        (r"host=db password='it\'s here' dbname=x", f"host=db password={R} dbname=x"),
        ('connect failed: password="dq pw" host=db', f"connect failed: password={R} host=db"),
        ("PASSWORD = s3cr3t", f"PASSWORD = {R}"),
        # userinfo of any scheme
        ("redis://:pw0rd@cache:6379/0", f"redis://:{R}@cache:6379/0"),
        ("amqp://user:pw@rabbit/vhost", f"amqp://user:{R}@rabbit/vhost"),
        ("postgresql://app:p@ss@db:5432/x", f"postgresql://app:{R}@db:5432/x"),
        (
            "see https://bob:pw@example/x and ftp://ann:pw2@files",
            f"see https://bob:{R}@example/x and ftp://ann:{R}@files",
        ),
        # Authorization headers and bare bearer tokens
        ("Authorization: Bearer eyJhbGciOi.J9.abc", f"Authorization: Bearer {R}"),
        ("authorization: Basic dXNlcjpwYXNz", f"authorization: Basic {R}"),
        ('-H "Authorization: Token abcdef123456"', f'-H "Authorization: Token {R}"'),
        ("{'Authorization': 'Bearer abcdef123456'}", f"{{'Authorization': 'Bearer {R}'}}"),
        ("curl with bearer abcdefgh12345678", f"curl with bearer {R}"),
        # query parameters
        ("http://h/x?token=abc123&page=2", f"http://h/x?token={R}&page=2"),
        ("http://h/x?a=1&password=p&secret=s", f"http://h/x?a=1&password={R}&secret={R}"),
        ("GET /api?api_key=K3Y&access_token=T0K HTTP/1.1", f"GET /api?api_key={R}&access_token={R} HTTP/1.1"),
        ("client_secret=abc apikey=def", f"client_secret={R} apikey={R}"),
        # webhooks whose path is the credential
        (
            "POST https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXX failed",
            f"POST https://hooks.slack.com/{R} failed",
        ),
        ("https://chat.example.org/hooks/3x8rjq1yutfqbq7dkm5mr1xbbe", f"https://chat.example.org/hooks/{R}"),
        ("https://discord.com/api/webhooks/123/abcDEF", f"https://discord.com/api/webhooks/{R}"),
        # JSON-escaped quotes (a report's JSON)
        (r'"error": "password=\"pw x\" host=db"', rf'"error": "password={R} host=db"'),
    ],
)
def test_each_credential_shape_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "checkout errors at 20%; see http://grafana/d/abc?var=x&from=now-1h",
        "user@host fine; postgresql://app@db:5432/x has no password",
        "http://prometheus:9090/api/v1/query",
        "the bearer of bad news; tokens=5; max_tokens=7",
        "password_env: PG_PASSWORD, dsn_env=CHAOSRUNNER_PG_DSN, secret_env=X",
        "disk [/var/lib/pg] full",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_fields_are_redacted_deeply_except_the_ones_kept() -> None:
    fields = {
        "error": "could not connect: password=hunter2",
        "targets": [{"summary": "via redis://:pw@cache"}],
        "revert_record": {"dsn": "host=db password=keep-me"},
        "offset": 1.5,
    }
    redacted = redact_fields(fields, keep=("revert_record",))
    assert redacted == {
        "error": f"could not connect: password={R}",
        "targets": [{"summary": f"via redis://:{R}@cache"}],
        "revert_record": {"dsn": "host=db password=keep-me"},
        "offset": 1.5,
    }
    assert fields["error"].endswith("hunter2")  # the caller's dict is untouched


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T1/B2/secret", f"https://hooks.slack.com/{R}"),
        ("http://user:pw@127.0.0.1:8080/hook?token=x", f"http://127.0.0.1:8080/{R}"),
        ("https://example.org", "https://example.org"),
        ("not a url", R),
        ("http://[::1]:9/a", f"http://[::1]:9/{R}"),
        ("http://[::1/broken", R),
        ("https://hooks.example/\x1b]0;x\x07", f"https://hooks.example/{R}"),
        ("https://hooks.exa\x1bmple/", "https://hooks.exa?mple"),
    ],
)
def test_a_url_for_a_log_line_keeps_only_scheme_and_host(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_log_handler_with_the_filter_writes_no_credentials() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "webhook %s failed: %s", "https://hooks.slack.com/services/T1/B2/s3cr3t", "password=pw1"
        )
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == f"webhook https://hooks.slack.com/{R} failed: password={R}\n"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("PGPASSWORD=hunter2 psql -h db", "hunter2"),
        ('{"password": "hunter2"}', "hunter2"),
        ("password: hunter2", "hunter2"),
        ("X-Api-Key: abcd1234efgh", "abcd1234efgh"),
        ("client-secret=zzz999", "zzz999"),
    ],
)
def test_environment_header_yaml_and_json_shapes_are_redacted(text: str, hidden: str) -> None:
    assert hidden not in redact_text(text) and R in redact_text(text)


@pytest.mark.parametrize("text", ["the token expired", "tokenizer ran", "password reset link sent"])
def test_prose_about_secrets_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize("unit", ["x-", "a:", "x://", "password=", "https://u:p@"])
def test_redaction_takes_linear_time_on_adversarial_text(unit: str) -> None:
    # A responder's 64 KiB note is redacted on the journal's write path while the runner's
    # abort and revert threads wait for the GIL: quadratic patterns took minutes here.
    text = unit * (64 * 1024 // len(unit))
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 5.0  # generous: linear is ~0.1 s, quadratic was minutes


def test_redacting_twice_keeps_the_sentence_around_a_webhook() -> None:
    text = "uses webhooks (https://hooks.slack.com/services/T1/B2/abcdef); the schedule"
    once = redact_text(text)
    assert once == f"uses webhooks (https://hooks.slack.com/{R}); the schedule"
    assert redact_text(once) == once
