"""Secrets never reach a report: planted in the environment, a DSN and the journal's text."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime

import pytest

from chaosrunner.engine.journal import JournalEvent
from chaosrunner.report.model import build_report
from chaosrunner.report.redact import REDACTED, Redactor, dsn_password, secret_values
from chaosrunner.report.sample import sample_run
from chaosrunner.report.writer import FORMATS, render

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
PASSWORD = 'pl4nted&Pass<w>rd"x'
TOKEN = "tok-5ecret-77b1e0"


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("postgresql://app:s3cret@db:5432/x", "s3cret"),
        ("postgresql://app:p%40ss@db/x", "p@ss"),
        ("host=db user=app password='two words' dbname=x", "two words"),
        ("host=db user=app password=plain dbname=x", "plain"),
        ("postgresql://app@db/x", None),
    ],
)
def test_dsn_password(dsn: str, password: str | None) -> None:
    assert dsn_password(dsn) == password


def test_secrets_come_from_the_variables_the_scenario_names_and_secret_looking_names() -> None:
    debrief, _ = sample_run()
    env = {
        "CHAOSRUNNER_PG_DSN": "postgresql://app:hunter2@db/x",  # named by target.postgres.dsn_env
        "SERVICE_API_KEY": TOKEN,
        "HOME": "/root",
        "SHORT_TOKEN": "abc",  # too short to redact by name alone
    }
    found = secret_values(debrief.scenario, env)
    assert found[0] == "postgresql://app:hunter2@db/x"
    assert set(found) == {"postgresql://app:hunter2@db/x", "hunter2", TOKEN}


def test_every_format_is_scrubbed_of_planted_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"postgresql://checkout:{urllib.parse.quote(PASSWORD, safe='')}@db:5432/shop"
    monkeypatch.setenv("CHAOSRUNNER_PG_DSN", dsn)
    monkeypatch.setenv("CHECKOUT_API_TOKEN", TOKEN)
    debrief, metrics = sample_run()
    leaks = [
        ("note", f"pasted the DSN by mistake: {dsn}"),
        ("note", f"password is {PASSWORD}"),
        ("status", f"token {TOKEN} rotated; next update 5m"),
        ("note", "the other db: postgresql://ro:an0ther-pw@replica/shop"),
    ]
    for index, (mark, value) in enumerate(leaks):
        moment = f"2026-11-27T14:01:2{index}.000000Z"
        debrief.events.append(
            JournalEvent(
                type="responder", time=moment, offset=80.0, event=mark, at=moment, by="dave", value=value
            )
        )
    debrief.events.append(
        JournalEvent(
            type="fault_inject_failed",
            time="2026-11-27T14:01:30.000000Z",
            offset=90.0,
            fault="pool",
            kind="postgres.connection-exhaustion",
            error=f"could not connect with {dsn}",
        )
    )
    report = build_report(debrief, metrics, now=NOW)
    report.notes.append(f"Prometheus at http://admin:{TOKEN}@prom:9090 did not answer")
    texts = render(report, list(FORMATS))
    assert set(texts) == {"html", "md", "chart", "json"}
    for name, text in texts.items():
        for secret in (PASSWORD, TOKEN, "an0ther-pw", dsn, "pl4nted"):
            assert secret not in text, f"{secret!r} leaked into {name}"
        assert "&amp;Pass" not in text and "%26Pass" not in text  # nor its escaped spellings
    assert REDACTED in texts["md"] and REDACTED in texts["html"]
    json.loads(texts["json"])  # still valid JSON after scrubbing


SHAPED_LEAKS = {
    "libpq": ("connect: host=db user=app password='two words' dbname=x", "two words"),
    "redis-userinfo": ("cache at redis://:r3dis-pw@cache:6379 refused", "r3dis-pw"),
    "bearer": ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig' /api", "eyJhbGciOiJIUzI1NiJ9"),
    "basic": ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    "query-token": ("GET /metrics?access_token=qt0ken-value&x=1", "qt0ken-value"),
    "slack": ("posted to https://hooks.slack.com/services/T0AAA/B0BBB/sl4ckS3cretPath", "sl4ckS3cretPath"),
    "mattermost": ("posted to https://chat.example.org/hooks/mm0hookid0123", "mm0hookid0123"),
}


def test_every_format_is_scrubbed_of_credentials_known_only_by_their_shape() -> None:
    """No environment variable names these: the report recognises them by their shape."""
    debrief, metrics = sample_run()
    for index, (text, _) in enumerate(SHAPED_LEAKS.values()):
        moment = f"2026-11-27T14:01:{10 + index}.000000Z"
        # A JournalEvent built by hand, as an older journal (written before the journal
        # scrubbed its events) would hold it.
        debrief.events.append(
            JournalEvent(
                type="responder", time=moment, offset=80.0, event="note", at=moment, by="eve", value=text
            )
        )
    report = build_report(debrief, metrics, now=NOW)
    report.notes.append(SHAPED_LEAKS["libpq"][0])
    texts = render(report, list(FORMATS))
    for name, text in texts.items():
        for shape, (_, secret) in SHAPED_LEAKS.items():
            assert secret not in text, f"{shape} secret leaked into {name}"
    assert "chat.example.org/hooks/" in texts["md"]  # where it went stays readable
    json.loads(texts["json"])


def test_scrub_leaves_ordinary_text_alone() -> None:
    redactor = Redactor(["s3cret-value"])
    text = "checkout errors at 20%; see http://grafana/d/abc?var=x; user@host fine"
    assert redactor.scrub(text) == text
    assert redactor.scrub("https://bob:pw@example/x") == f"https://bob:{REDACTED}@example/x"
