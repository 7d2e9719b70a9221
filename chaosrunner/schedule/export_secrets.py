"""Secrets and the CronJob export: named ones go to a Secret, literal ones stop the export.

The exported scenarios live in a ConfigMap, which anyone allowed to read
ConfigMaps in the namespace can read, and which ends up in git with the rest
of the manifests. Scenarios name their secrets by environment variable
(``dsn_env`` and every other ``*_env`` field), so those travel as a Secret:
one key per variable, set in the pod through ``secretKeyRef``.

A secret written *into* a scenario - a password in a Prometheus URL, a token
in a query string, a Slack webhook (its token is its path) as the escalation
hook - has no variable to move it to. The export refuses it, naming the file,
line and field, rather than copying it into the ConfigMap.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaosrunner.errors import Problem, ScenarioError
from chaosrunner.redaction import redact_text
from chaosrunner.scenario.document import read_source
from chaosrunner.scenario.models import Scenario
from chaosrunner.scenario.problems import format_path

SECRET_QUERY_KEYS = re.compile(
    r"^(token|access_token|api_?key|key|secret|password|passwd|pwd|auth|sig|signature)$", re.IGNORECASE
)
SLACK_STYLE_PATH = re.compile(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]{8,}")
DISCORD_STYLE_PATH = re.compile(r"/api/webhooks/\d+/[A-Za-z0-9_-]{16,}")
KEY_VALUE_PASSWORD = re.compile(r"\bpassword\s*=\s*\S", re.IGNORECASE)
BEARER = re.compile(r"\bBearer\s+\S{8,}", re.IGNORECASE)


def literal_secret(value: str) -> str | None:
    """Why ``value`` holds a secret in clear, or None."""
    if KEY_VALUE_PASSWORD.search(value):
        return "a libpq password= value"
    if BEARER.search(value):
        return "a Bearer token"
    if "://" not in value:
        return _shaped_like_a_credential(value)
    try:
        parts = urllib.parse.urlsplit(value.strip())
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        return None
    if parts.password:
        return "a password in the URL"
    if has_userinfo:
        return "credentials in the URL's user part"
    if any(SECRET_QUERY_KEYS.match(key) for key, _ in urllib.parse.parse_qsl(parts.query)):
        return "a credential in the URL's query"
    if (parts.hostname or "").endswith("hooks.slack.com") or SLACK_STYLE_PATH.search(parts.path):
        return "a webhook token in the URL's path"
    if DISCORD_STYLE_PATH.search(parts.path):
        return "a webhook token in the URL's path"
    return _shaped_like_a_credential(value)


def _shaped_like_a_credential(value: str) -> str | None:
    """Anything the log redaction would hide (a Mattermost /hooks/ path, a Teams webhook, ...)."""
    return "a credential (by its shape)" if redact_text(value) != value else None


def _strings(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))
    elif isinstance(data, str):
        yield path, data


def literal_secrets(scenario_file: Path) -> list[Problem]:
    """One located problem per value of the file that carries a secret in clear."""
    data, source_map = read_source(scenario_file)
    problems = []
    for path, value in _strings(data):
        why = literal_secret(value)
        if why is None:
            continue
        at = source_map.locate(path)
        problems.append(
            Problem(
                str(scenario_file),
                at.line,
                at.column,
                format_path(path),
                f"{why}: the export would copy it into a ConfigMap. Keep secrets out of the scenario "
                "(a URL without credentials, a secret named by an *_env variable) and export again",
            )
        )
    return problems


def refuse_literal_secrets(scenario_files: list[Path]) -> None:
    problems = [problem for path in scenario_files for problem in literal_secrets(path)]
    if problems:
        raise ScenarioError(problems)


def env_names(scenario: Scenario) -> list[str]:
    """The environment variables a run of ``scenario`` reads secrets from (``*_env`` fields in use)."""
    names: set[str] = set()
    for fault in scenario.faults:
        params = fault.params.model_dump(mode="json")
        if fault.kind.startswith("postgres."):
            names.add(scenario.target.postgres.dsn_env)
        elif fault.kind == "kubernetes.postgres-connection-exhaustion" and not params.get("dsn_secret"):
            # The DSN is copied from here into a Secret in the cluster; without dsn_secret it must be here.
            names.add(params.get("dsn_env") or scenario.target.postgres.dsn_env)
        names.update(_env_values(params))
    names.update(chat_env_names(scenario))
    return sorted(names)


def chat_env_names(scenario: Scenario) -> set[str]:
    """The outbound chat's secrets (a bot token, webhook URLs): a CronJob's run posts to its channel
    like any automated run. Not the signing secret or command token: automated runs take no commands."""
    slack, mattermost = scenario.chat.slack, scenario.chat.mattermost
    named = [
        slack.bot_token_env if slack else None,
        slack.webhook_url_env if slack else None,
        mattermost.webhook_url_env if mattermost else None,
    ]
    return {name for name in named if name}


def _env_values(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str) and value:
                yield value
            else:
                yield from _env_values(value)
    elif isinstance(data, list):
        for item in data:
            yield from _env_values(item)
