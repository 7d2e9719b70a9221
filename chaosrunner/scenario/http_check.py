"""HTTP steady-state checks: "healthy" as an answer from the service itself.

PromQL checks say what the monitoring sees; many teams (and every Chaos
Toolkit ``http`` probe brought over by ``chaosrunner import ctk``) define
healthy as "this URL answers 200 with that body". An entry of
``steady_state`` with an ``http:`` key is such a check: one request, then
expectations on the status code, the body (substring or regular expression)
and one JSON value. The engine probes it before injecting and after
reverting, like the PromQL checks.

This module is the document format plus ``judge``, the pure part: given what
came back, which expectation failed (``None``: all held). The request itself
is made by ``chaosrunner.observe.http_probe``; the engine joins the two.

Header values are literal (``headers``) or, for credentials, named by
environment variable (``header_env``): the value is read when the request is
made and never journaled, planned or printed.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaosrunner.durations import Duration
from chaosrunner.faults.connections import ENV_VAR_NAME
from chaosrunner.scenario.patterns import NAME_PATTERN, URL_PATTERN

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""RFC 9110 token characters: anything else would let a value smuggle a second header."""
JSON_PATH = re.compile(r"""^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\])|(\["[^"]*"\]))*$""")
JSON_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\["([^"]*)"\]""")
MAX_TIMEOUT = timedelta(minutes=1)
JsonScalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class JsonExpectation(_Model):
    """One value in a JSON body: ``path`` (``$.status``, ``$.checks[0]["name"]``) equal to ``equals``."""

    path: str = Field(description='where the value is: $, then .key, [index] or ["key"] steps')
    equals: JsonScalar = Field(description="the value it must have (a string, number, boolean or null)")

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, path: str) -> str:
        if not JSON_PATH.match(path):
            raise ValueError(f'expected a path such as $.status or $.items[0]["name"], found {path!r}')
        return path

    def steps(self) -> list[str | int]:
        return [
            key if key else (int(index) if index else quoted)
            for key, index, quoted in JSON_STEP.findall(self.path[1:])
        ]


class HttpProbe(_Model):
    """The request, and what its answer must be."""

    url: str = Field(pattern=URL_PATTERN, description="http:// or https:// URL; redirects are not followed")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="literal header values (no secrets)")
    header_env: dict[str, str] = Field(
        default_factory=dict,
        description="header: VARIABLE - the value is read from the environment when probing; never journaled",
    )
    body: str | None = Field(None, description="request body, sent as given")
    timeout: Duration = Field(timedelta(seconds=3), description="for the whole request, at most 1m")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1, description="status codes")
    expect_body: str | None = Field(None, description="a substring the body must contain")
    expect_body_regex: str | None = Field(None, description="a regular expression searched in the body")
    expect_json: JsonExpectation | None = Field(None, description="one value in a JSON body")

    @field_validator("headers", "header_env")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
        return headers

    @field_validator("headers")
    @classmethod
    def _header_values(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of header {name!r} holds a line break")
        return headers

    @field_validator("header_env")
    @classmethod
    def _variable_names(cls, header_env: dict[str, str]) -> dict[str, str]:
        for name, variable in header_env.items():
            if not re.match(ENV_VAR_NAME, variable):
                raise ValueError(f"header {name!r}: {variable!r} is not an environment variable name")
        return header_env

    @field_validator("timeout")
    @classmethod
    def _sane_timeout(cls, timeout: timedelta) -> timedelta:
        if not timedelta(0) < timeout <= MAX_TIMEOUT:
            raise ValueError("must be longer than zero and at most 1m")
        return timeout

    @field_validator("expect_status")
    @classmethod
    def _status_codes(cls, codes: list[int]) -> list[int]:
        for code in codes:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return codes

    @field_validator("expect_body_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from error
        return pattern

    @model_validator(mode="after")
    def _one_source_per_header(self) -> Self:
        both = sorted({name.lower() for name in self.headers} & {name.lower() for name in self.header_env})
        if both:
            raise ValueError(f"header {both[0]!r} is in both headers and header_env")
        if self.method == "HEAD" and (self.expect_body or self.expect_body_regex or self.expect_json):
            raise ValueError("a HEAD request gets no body: drop the body expectations or use GET")
        return self

    def describe(self) -> str:
        """The check in one line, for the plan (no header values)."""
        wants = [f"status {'/'.join(str(code) for code in self.expect_status)}"]
        if self.expect_body is not None:
            wants.append(f"body contains {self.expect_body!r}")
        if self.expect_body_regex is not None:
            wants.append(f"body matches /{self.expect_body_regex}/")
        if self.expect_json is not None:
            wants.append(f"{self.expect_json.path} == {json.dumps(self.expect_json.equals)}")
        secrets = "".join(f", header {name} from ${variable}" for name, variable in self.header_env.items())
        within = f"within {self.timeout.total_seconds():g}s"
        return f"{self.method} {self.url} -> {', '.join(wants)} {within}{secrets}"


class HttpSteadyStateCheck(_Model):
    """A ``steady_state`` entry with ``http:``: healthy while the request is answered as expected."""

    name: str = Field(pattern=NAME_PATTERN, description="short identifier used in the journal and report")
    http: HttpProbe
    description: str = ""

    def describe(self) -> str:
        return self.http.describe()


_MISSING = object()


def _json_value(document: Any, steps: list[str | int]) -> Any:
    value = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        in_mapping = isinstance(step, str) and isinstance(value, dict) and step in value
        if in_list or in_mapping:
            value = value[step]
        else:
            return _MISSING
    return value


def judge(probe: HttpProbe, status: int, body: bytes) -> str | None:
    """Which expectation the answer fails, in words; ``None`` when every one holds."""
    if status not in probe.expect_status:
        wanted = " or ".join(str(code) for code in probe.expect_status)
        return f"expect_status: got {status}, wanted {wanted}"
    text = body.decode("utf-8", errors="replace")
    if probe.expect_body is not None and probe.expect_body not in text:
        return f"expect_body: the body does not contain {probe.expect_body!r}"
    if probe.expect_body_regex is not None and not re.search(probe.expect_body_regex, text):
        return f"expect_body_regex: /{probe.expect_body_regex}/ does not match the body"
    if probe.expect_json is not None:
        expected = probe.expect_json
        try:
            document = json.loads(text)
        except ValueError:
            return "expect_json: the body is not JSON"
        value = _json_value(document, expected.steps())
        if value is _MISSING:
            return f"expect_json: {expected.path} is not in the body"
        if value != expected.equals or isinstance(value, bool) is not isinstance(expected.equals, bool):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            return f"expect_json: {expected.path} is {shown}, wanted {json.dumps(expected.equals)}"
    return None
