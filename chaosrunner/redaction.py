"""Secrets that look like secrets are scrubbed from every text that leaves the process.

Scenarios name secrets by environment variable, and backends scrub the DSNs
they know from their own errors. But text arrives from many hands - a library's
error message that quotes a connection string, a responder who pastes a curl
command into a note, a webhook URL in a log line - and the journal, the
consoles, the report, the logs and the webhooks all show it. ``redact_text``
recognises credentials by their shape, whoever wrote them:

- the password in a URL's userinfo, any scheme (``redis://:pw@host``,
  ``amqp://user:pw@host``); a user name alone is kept;
- ``password=``, ``token=``, ``secret=``, ``api_key=``, ``access_token=`` and
  similar ``key=value`` pairs: libpq DSNs (quoted values too:
  ``password='a b'``) and URL query parameters alike;
- ``Authorization:`` header values (Bearer, Basic, any scheme) and a bare
  ``Bearer <token>``;
- webhook URLs whose path is the credential: Slack
  (``hooks.slack.com/services/T../B../..``), Mattermost and others' ``/hooks/<id>``,
  Discord's ``/api/webhooks/..``, Teams' ``/webhookb2/..`` - the host stays, so
  a reader still knows where it went.

Each secret becomes ``[redacted]``; the words around it stay, so the message
still reads. The function is idempotent. It knows no secret *values*: the
report's ``Redactor`` adds those (the environment variables a scenario names).

It lives in the foundation because the journal (engine) and the report both
use it, and the engine may not import the report.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"

# scheme://[user]:password@ - the password runs to the last "@" before the path, so an
# unescaped "@" inside it ("p@ss") is hidden too. The scheme is bounded and starts a token,
# for the same reason as _SECRET_KEY below: linear time on any text.
_URL_USERINFO = re.compile(
    r"(?P<head>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^/\s:@\"'<>]*:)(?P<secret>[^\s\"'<>/]+)(?=@)"
)
# A key starts a token (nothing word-like before it) and has a bounded prefix: an unbounded
# ``(?:[a-z0-9]+[_-])*`` tried at every boundary of "x-x-x-..." took seconds per KiB while
# holding the GIL, freezing the runner's abort and revert threads. "PGPASSWORD", "db_password",
# "X-Api-Key" and "client-secret" are all keys.
_SECRET_KEY = (
    r"(?<![a-z0-9_-])(?:[a-z0-9]{1,32}[_-]){0,4}[a-z]{0,8}"
    r"(?:password|passwd|token|secret|api[_-]?key|apikey|private[_-]?key)"
)
# key=value or key: value: a libpq DSN (values may be quoted, with \' escapes), a URL query
# parameter, an environment assignment, a header, a YAML or JSON field ("password": "x").
_KEY_VALUE = re.compile(
    rf"(?P<head>{_SECRET_KEY}[\"']?\s*[:=]\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'?|\\\".*?\\\"|\"[^\"]*\"?|&#39;.*?&#39;|&#x27;.*?&#x27;|&quot;.*?&quot;|[^\s&'\"<>]+)",
    re.IGNORECASE,
)
_AUTHORIZATION = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey)\s+)?)(?P<secret>[^\s\"',;<>]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE)
_WEBHOOK_PATH = re.compile(
    r"(?P<head>\bhooks\.slack(?:-gov)?\.com/"
    r"|\b(?:discord(?:app)?\.com/api/webhooks|webhook\.office\.com/webhookb2)/"
    r"|://[^/\s\"'<>]+(?:/[^/\s\"'<>?#]+)*?/hooks/)"
    r"(?P<secret>[^\s\"'<>?#(),;]+)",  # not the ")" or ";" of the sentence around the URL
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PATTERNS = (_WEBHOOK_PATH, _URL_USERINFO, _AUTHORIZATION, _BEARER, _KEY_VALUE)


def _replace(match: re.Match[str]) -> str:
    return match.group("head") + REDACTED


def redact_text(text: str) -> str:
    """``text`` with every credential recognisable by its shape replaced by ``[redacted]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(_replace, text)
    return text


def redact_fields(fields: Mapping[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``fields`` with every string inside redacted, except under the keys in ``keep``.

    ``keep`` is for machine data that must survive verbatim: a journal's copy of
    the validated scenario (a later debrief queries Prometheus with it), a
    revert record (``recover`` needs it exactly).
    """
    kept = set(keep)
    return {key: value if key in kept else _redact_value(value) for key, value in fields.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def redact_url(url: str) -> str:
    """Where a request went, for a log line: scheme, host and port only.

    The path and query may be credentials (a Slack webhook's path is its
    token), and so may the userinfo; control characters are dropped, so a
    crafted URL cannot write to the terminal either.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return _CONTROL.sub("?", f"{parts.scheme}://{netloc}" + (f"/{REDACTED}" if hidden else ""))


class RedactingFilter(logging.Filter):
    """A log handler's filter that redacts each record's message (arguments included) in place.

    ``handler.addFilter(RedactingFilter())`` on any handler whose lines leave
    the process (stderr, a log file); the record's arguments are folded into the
    message first, so a secret passed as ``%s`` is caught too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True
