"""A Chaos Toolkit experiment as read from disk, with where every value came from.

Experiments are JSON or YAML; JSON is (for all practical purposes) YAML, so
both go through the scenario layer's position-keeping reader and every
refusal can name ``file:line:column``. This module also resolves what Chaos
Toolkit resolves at run time: ``configuration`` (static values and ``env``
entries) and ``${name}`` substitution, and the names of ``secrets`` - env
secrets become variable *names* we reference, never values we copy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.errors import Problem, ScenarioError
from chaosrunner.scenario.document import read_source
from chaosrunner.scenario.problems import format_path
from chaosrunner.scenario.yaml_source import Path as DataPath
from chaosrunner.scenario.yaml_source import SourceMap

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


@dataclass(frozen=True)
class EnvSecret:
    """A secret Chaos Toolkit reads from an environment variable: we keep the variable's name."""

    group: str
    key: str
    variable: str


@dataclass
class Experiment:
    """The parsed experiment plus its resolved configuration and secret names."""

    file: str
    data: dict[str, Any]
    source_map: SourceMap
    configuration: dict[str, Any] = field(default_factory=dict)
    config_from_env: dict[str, str] = field(default_factory=dict)  # key -> variable read at import
    secrets: dict[str, EnvSecret] = field(default_factory=dict)  # key -> its variable
    vault_secrets: list[tuple[DataPath, str]] = field(default_factory=list)  # (path, description)

    def where(self, path: DataPath) -> str:
        position = self.source_map.locate(path)
        return f"{self.file}:{position.line}:{position.column}"

    def problem(self, path: DataPath, message: str) -> Problem:
        position = self.source_map.locate(path)
        return Problem(self.file, position.line, position.column, format_path(path), message)

    def substitute(self, value: Any) -> Any:
        """``${name}`` from configuration, the way Chaos Toolkit fills it (recursively).

        A string that is exactly one placeholder takes the value itself (a
        number stays a number); inside text it is formatted in. Names that are
        secrets or unknown are left as written for the caller to judge.
        """
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole and whole.group(1) in self.configuration:
                return self.configuration[whole.group(1)]

            def fill(match: re.Match[str]) -> str:
                name = match.group(1)
                return str(self.configuration[name]) if name in self.configuration else match.group(0)

            return PLACEHOLDER.sub(fill, value)
        if isinstance(value, list):
            return [self.substitute(item) for item in value]
        if isinstance(value, dict):
            return {key: self.substitute(item) for key, item in value.items()}
        return value

    def secret_named(self, text: str) -> EnvSecret | None:
        """The env secret a string is exactly a ``${name}`` of, if it is one."""
        whole = PLACEHOLDER.fullmatch(text.strip()) if isinstance(text, str) else None
        return self.secrets.get(whole.group(1)) if whole else None


def read_experiment(path: Path, environ: Mapping[str, str] | None = None) -> Experiment:
    """Parse and resolve an experiment file; located ``ScenarioError`` for what cannot be read."""
    data, source_map = read_source(path)
    return build_experiment(str(path), data, source_map, environ)


def build_experiment(
    file: str,
    data: dict[str, Any],
    source_map: SourceMap,
    environ: Mapping[str, str] | None = None,
    *,
    strict: bool = True,
) -> Experiment:
    """Resolve configuration and secrets; ``strict=False`` (a past run's copy) keeps going past problems."""
    experiment = Experiment(file, data, source_map)
    problems: list[Problem] = []
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        problems.append(experiment.problem(("title",), "a Chaos Toolkit experiment needs a title"))
    if not isinstance(data.get("method", []), list):
        problems.append(experiment.problem(("method",), "expected a list of activities"))
    _resolve_configuration(experiment, os.environ if environ is None else environ, problems)
    _resolve_secrets(experiment, problems)
    if problems and strict:
        raise ScenarioError(problems)
    return experiment


def _resolve_configuration(
    experiment: Experiment, environ: Mapping[str, str], problems: list[Problem]
) -> None:
    configuration = experiment.data.get("configuration") or {}
    if not isinstance(configuration, dict):
        problems.append(experiment.problem(("configuration",), "expected a mapping of names to values"))
        return
    for key, value in configuration.items():
        path = ("configuration", key)
        if isinstance(value, dict) and value.get("type") == "env":
            variable = value.get("key")
            if not isinstance(variable, str) or not variable:
                problems.append(
                    experiment.problem((*path, "key"), "an env entry names its variable in 'key'")
                )
                continue
            if variable in environ:
                experiment.configuration[key] = _typed(environ[variable], value.get("env_var_type"))
            elif "default" in value:
                experiment.configuration[key] = value["default"]
            else:
                problems.append(
                    experiment.problem(
                        path, f"environment variable {variable} is not set and the entry has no default"
                    )
                )
                continue
            experiment.config_from_env[key] = variable
        elif isinstance(value, dict) and "type" in value:
            problems.append(
                experiment.problem(
                    (*path, "type"),
                    f"configuration of type {value['type']!r} is not supported (static or env)",
                )
            )
        else:
            experiment.configuration[key] = value
    # A static value may itself use ${other}: resolve once, in order, as Chaos Toolkit does.
    for key, value in list(experiment.configuration.items()):
        experiment.configuration[key] = experiment.substitute(value)


def _typed(text: str, wanted: Any) -> Any:
    converters: dict[str, Callable[[str], Any]] = {
        "int": int,
        "float": float,
        "bool": lambda raw: raw.lower() in ("1", "true", "yes"),
    }
    convert = converters.get(str(wanted)) if wanted else None
    try:
        return convert(text) if convert else text
    except ValueError:
        return text


def _resolve_secrets(experiment: Experiment, problems: list[Problem]) -> None:
    secrets = experiment.data.get("secrets") or {}
    if not isinstance(secrets, dict):
        problems.append(experiment.problem(("secrets",), "expected a mapping of secret groups"))
        return
    for group, entries in secrets.items():
        if not isinstance(entries, dict):
            problems.append(experiment.problem(("secrets", group), "expected a mapping of secret names"))
            continue
        if entries.get("type") == "vault":  # a whole group from Vault
            experiment.vault_secrets.append((("secrets", group), f"secret group {group!r} from Vault"))
            continue
        for key, value in entries.items():
            path = ("secrets", group, key)
            if isinstance(value, dict) and value.get("type") == "env" and isinstance(value.get("key"), str):
                experiment.secrets[key] = EnvSecret(group, key, value["key"])
            elif isinstance(value, dict) and value.get("type") == "vault":
                experiment.vault_secrets.append((path, f"secret {group}.{key} from Vault"))
            elif isinstance(value, dict) and "type" in value:
                problems.append(
                    experiment.problem(
                        (*path, "type"), f"secret of type {value['type']!r} is not supported (env only)"
                    )
                )
            else:
                problems.append(
                    experiment.problem(
                        path,
                        "a secret written into the experiment is refused: we never copy secrets "
                        "into a scenario; reference an environment variable ({type: env, key: VAR})",
                    )
                )
