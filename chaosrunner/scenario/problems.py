"""Turning validation failures into ``file:line:column`` problems people can act on.

Pydantic reports *what* is wrong at a ``loc`` path; the source map knows
*where* that path is in the file. This module joins the two and rewrites
pydantic's wording into "expected …, found …" with the allowed keys spelled
out, because "extra inputs are not permitted" does not tell an author which
key they meant.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from chaosrunner.errors import Problem
from chaosrunner.faults.connections import ENV_VAR_NAME
from chaosrunner.scenario.models import NAME_PATTERN, URL_PATTERN
from chaosrunner.scenario.yaml_source import Path, SourceMap


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class ProblemList:
    """Collects problems for one file, skipping follow-on errors under a known one."""

    def __init__(self, file: str, source_map: SourceMap) -> None:
        self.file = file
        self.source_map = source_map
        self.problems: list[Problem] = []
        self._covered: list[Path] = []

    def add(self, path: Path, message: str, *, at_key: bool = False) -> None:
        if self.covers(path):
            return
        position = self.source_map.locate(path, at_key=at_key)
        self.problems.append(Problem(self.file, position.line, position.column, format_path(path), message))

    def cover(self, path: Path) -> None:
        """Errors at or below ``path`` are consequences of one already reported."""
        self._covered.append(path)

    def covers(self, path: Path) -> bool:
        return any(path[: len(prefix)] == prefix for prefix in self._covered)

    def add_validation_error(self, error: ValidationError, model: type[BaseModel], prefix: Path = ()) -> None:
        for detail in error.errors():
            path = (*prefix, *detail["loc"])
            message, at_key = _explain(detail, model, tuple(detail["loc"]))
            self.add(path, message, at_key=at_key)

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.line, p.column))


def _explain(detail: ErrorDetails, model: type[BaseModel], loc: Path) -> tuple[str, bool]:
    kind = detail["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = allowed_keys(model, loc[:-1])
        hint = did_you_mean(key, allowed)
        expected = f"; expected one of: {', '.join(sorted(allowed))}" if allowed and not hint else ""
        return f"unknown key {key!r}{hint}{expected}", True
    if kind == "missing":
        return f"missing required key {str(loc[-1])!r}", False
    message = detail["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    elif message.startswith("Input should be "):
        message = "expected " + message.removeprefix("Input should be ")
    elif message.startswith("String should match pattern"):
        message = "expected " + _pattern_words(str(detail.get("ctx", {}).get("pattern", "")))
    elif kind == "literal_error" or kind.endswith("_type") or kind.endswith("_parsing"):
        message = message[0].lower() + message[1:]
    if kind not in ("value_error", "assertion_error") and "found" not in message:
        message += f", found {describe_value(detail.get('input'))}"
    return message, False


def _pattern_words(pattern: str) -> str:
    words = {
        NAME_PATTERN: "a name of lower-case letters, digits, '-' and '_'",
        URL_PATTERN: "an http:// or https:// URL",
        ENV_VAR_NAME: "an environment variable name such as PG_DSN",
    }
    return words.get(pattern, f"text matching {pattern}")


def allowed_keys(model: type[BaseModel], path: Path) -> list[str]:
    """The keys a mapping at ``path`` (inside ``model``) may have."""
    target = _model_at(model, path)
    if target is None:
        return []
    return [field.alias or name for name, field in target.model_fields.items()]


def _model_at(model: type[BaseModel], path: Path) -> type[BaseModel] | None:
    annotation: Any = model
    for part in path:
        annotation = _unwrap(annotation, part)
        if annotation is None:
            return None
    annotation = _unwrap(annotation, None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any, part: str | int | None) -> Any:
    """Step from a type into the type found at ``part`` (a key, an index, or nothing)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _unwrap(options[0], part) if len(options) == 1 else None
    if part is None:
        return annotation
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
    return None
