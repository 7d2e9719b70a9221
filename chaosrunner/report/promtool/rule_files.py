"""The team's rule files, read the way promtool will read them: groups, intervals, ``for``, annotations.

The exported test runs against these files, not against what Prometheus had
loaded, so what promtool will compare (an alert's annotations) and when it
evaluates (a group's ``interval``) come from them. A file that cannot be read
is bad input: the error names the file and what is wrong, exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.errors import UsageError

MAX_RULE_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class FileRule:
    name: str
    file: str
    group: str
    for_seconds: float
    interval_seconds: float | None
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def _seconds(value: Any, where: str) -> float:
    """A Prometheus duration (``5m``, ``1h30m``, ``250ms``) in seconds."""
    from chaosrunner.durations import parse_duration

    if value in (None, ""):
        return 0.0
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError as error:
        raise UsageError(f"{where}: {error}") from error


def read_rule_file(path: Path) -> list[FileRule]:
    import yaml

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RULE_FILE + 1)
    except OSError as error:
        raise UsageError(f"rule file {path}: cannot read it ({error.strerror or error})") from error
    if len(raw) > MAX_RULE_FILE:
        raise UsageError(f"rule file {path}: larger than {MAX_RULE_FILE} bytes")
    try:
        document = yaml.safe_load(raw) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UsageError(f"rule file {where}: not valid YAML ({getattr(error, 'problem', error)})") from error
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        raise UsageError(f"rule file {path}: groups: expected a list of rule groups")
    rules = []
    for number, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("rules", []), list):
            raise UsageError(f"rule file {path}: groups[{number}]: expected a group with a list of rules")
        group_name = str(group.get("name", ""))
        interval = _seconds(group.get("interval"), f"rule file {path}: groups[{number}].interval") or None
        for index, rule in enumerate(group.get("rules") or []):
            if not isinstance(rule, dict) or "alert" not in rule:
                continue  # recording rules: promtool evaluates them, we assert nothing about them
            where = f"rule file {path}: groups[{number}].rules[{index}]"
            annotations = rule.get("annotations") or {}
            labels = rule.get("labels") or {}
            if not isinstance(annotations, dict) or not isinstance(labels, dict):
                raise UsageError(f"{where}: labels and annotations must be mappings")
            rules.append(
                FileRule(
                    name=str(rule["alert"]),
                    file=str(path),
                    group=group_name,
                    for_seconds=_seconds(rule.get("for"), f"{where}.for"),
                    interval_seconds=interval,
                    annotations={str(key): str(value) for key, value in annotations.items()},
                    labels={str(key): str(value) for key, value in labels.items()},
                )
            )
    return rules


def read_rule_files(paths: Sequence[Path]) -> list[FileRule]:
    return [rule for path in paths for rule in read_rule_file(path)]
