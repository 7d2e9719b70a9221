"""Secrets never leave in a report: the last line of defence before a file is written.

Scenarios name secrets by environment variable (``dsn_env``), and backends
scrub DSNs from their errors, so a secret should never reach the journal or
the report in the first place. But a report shows text from many hands - a
responder's note, an error message from a library, a URL with credentials in
it - so every rendered output passes through ``Redactor.scrub`` before it is
written: each known secret value, in every spelling a renderer may have
produced (raw, HTML- and jinja-escaped, JSON-escaped, URL-quoted, Markdown
table cell), becomes ``[redacted]``; then whatever *looks* like a credential
(``chaosrunner.redaction.redact_text``: URL userinfo of any scheme, libpq and
query ``password=``/``token=``/``secret=``, ``Authorization`` and bearer
values, webhook paths) is scrubbed by its shape. Texts a renderer shortens
(error notes in the chart) are scrubbed before, when the report is assembled,
since a cut secret no longer matches.

Known secrets are the values of the environment variables the scenario names
(any field ending in ``_env``), the password inside each of them when it is
a DSN, and the values of environment variables whose names say they are
secret (PASSWORD, SECRET, TOKEN, DSN, API_KEY, CREDENTIAL, PRIVATE).
"""

from __future__ import annotations

import html
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from chaosrunner.redaction import REDACTED, redact_text
from chaosrunner.scenario.models import Scenario

__all__ = ["REDACTED", "Redactor", "dsn_password", "secret_values"]
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|DSN|API_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted by name: replacing "postgres" everywhere would garble the report."""
KEY_VALUE_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>'[^']*'|[^\s'\"]+)", re.IGNORECASE)


def _env_names(data: Any) -> Iterable[str]:
    """Every value of a ``*_env`` field anywhere in the scenario document."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                yield value
            else:
                yield from _env_names(value)
    elif isinstance(data, list):
        for item in data:
            yield from _env_names(item)


def dsn_password(dsn: str) -> str | None:
    """The password in a URL-style or key=value DSN, if it has one."""
    if "://" in dsn:
        try:
            password = urllib.parse.urlsplit(dsn).password
        except ValueError:
            return None
        return urllib.parse.unquote(password) if password else None
    match = KEY_VALUE_PASSWORD.search(dsn)
    return match.group("password").strip("'") if match else None


def secret_values(scenario: Scenario | None, environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    names = set(_env_names(scenario.model_dump(mode="json", by_alias=True))) if scenario else set()
    found: set[str] = set()
    for name in names:
        value = env.get(name, "").strip()
        if value:
            found.add(value)  # a named secret is redacted whatever its length
            password = dsn_password(value)
            if password:
                found.add(password)
    for name, raw in env.items():
        value = raw.strip()
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            found.add(value)
            password = dsn_password(value)
            if password and len(password) >= MIN_SECRET_LENGTH:
                found.add(password)
    return sorted(found, key=len, reverse=True)  # longest first: a DSN before the password in it


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        from markupsafe import escape as jinja_escape  # jinja spells quotes &#34; and &#39;

        from chaosrunner.report.render_env import md_cell, md_code

        spellings: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            spellings.update(
                {
                    secret,
                    html.escape(secret),
                    html.escape(secret, quote=False),
                    str(jinja_escape(secret)),
                    md_cell(secret),
                    md_code(secret),
                    json.dumps(secret)[1:-1],
                    urllib.parse.quote(secret, safe=""),
                    urllib.parse.quote(secret),
                }
            )
        self._spellings = sorted(spellings, key=len, reverse=True)

    @classmethod
    def for_scenario(cls, scenario: Scenario | None) -> Redactor:
        return cls(secret_values(scenario))

    def scrub(self, text: str) -> str:
        for spelling in self._spellings:
            if spelling in text:
                text = text.replace(spelling, REDACTED)
        return redact_text(text)
