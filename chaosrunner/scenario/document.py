"""Reading one YAML document file into a model, with located problems.

Shared by every document kind (scenarios, library conditions, schedules):
read the bytes, parse with positions, let an optional ``prepare`` step resolve
what the model cannot (registry lookups, library references), validate, and
raise one ``ScenarioError`` listing every problem - or return the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chaosrunner.errors import Problem, ScenarioError
from chaosrunner.scenario.problems import ProblemList, format_path
from chaosrunner.scenario.yaml_source import SourceError, SourceMap, parse

ModelT = TypeVar("ModelT", bound=BaseModel)
Prepare = Callable[[dict[str, Any], ProblemList], dict[str, Any]]
Check = Callable[[Any, ProblemList], None]


def read_source(path: Path) -> tuple[dict[str, Any], SourceMap]:
    """Parse a file that must hold one YAML (or JSON) mapping; located errors otherwise."""
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, 1, 1, "", "no such file")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(name, 1, 1, "", "is a folder, not a file")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [Problem(name, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise ScenarioError([Problem(name, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    try:
        data, source_map = parse(text, "JSON" if path.suffix.lower() == ".json" else "YAML")
    except SourceError as exc:
        field = format_path(exc.path)
        raise ScenarioError(
            [Problem(name, exc.position.line, exc.position.column, field, exc.message)]
        ) from None
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"[:60]
        raise ScenarioError(
            [Problem(name, 1, 1, "", f"expected a mapping of sections at the top, found {found}")]
        )
    return data, source_map


def read_model(
    path: Path,
    model: type[ModelT],
    prepare: Prepare | None = None,
    check: Check | None = None,
    parsed: tuple[dict[str, Any], SourceMap] | None = None,
) -> ModelT:
    data, source_map = parsed or read_source(path)
    problems = ProblemList(str(path), source_map)
    if prepare is not None:
        data = prepare(data, problems)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        problems.add_validation_error(exc, model)
        raise ScenarioError(problems.sorted()) from None
    if check is not None:
        check(result, problems)
    if problems.problems:
        raise ScenarioError(problems.sorted())
    return result
