"""The abort-condition library: reusable PromQL conditions referenced by name.

A scenario says ``use: error-rate-above`` with ``params: {job: checkout}``;
the library finds ``abort_conditions/*.yaml`` with that name and fills its
``${placeholders}``. Where the library lives: every folder named in
``CHAOSRUNNER_LIBRARY`` (os.pathsep-separated), then the nearest
``abort_conditions/`` found walking up from the scenario's folder, then
``./abort_conditions``, then the library that ships with chaosrunner (the
checkout's ``abort_conditions/``, or ``<prefix>/share/chaosrunner/`` where a
wheel installs it), so the bundled demo works from any folder. The first
definition of a name wins.

Placeholder values are escaped for a PromQL string literal, since they are
almost always label values (``job="${job}"``).
"""

from __future__ import annotations

import os
import string
import sys
from pathlib import Path
from typing import Any

from chaosrunner.scenario.document import read_model
from chaosrunner.scenario.models import ConditionReference, LibraryCondition
from chaosrunner.scenario.problems import did_you_mean

ENV_LIBRARY = "CHAOSRUNNER_LIBRARY"
FOLDER_NAME = "abort_conditions"


def escape_label_value(value: str | int | float) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def placeholders(expr: str) -> list[str]:
    return string.Template(expr).get_identifiers()


def _display(path: Path) -> str:
    """Relative to the working folder when inside it: shorter in plans and reports."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bundled_folders() -> list[Path]:
    """Where the shipped library is: beside the package in a checkout, under share/ once installed."""
    return [
        Path(__file__).resolve().parents[2] / FOLDER_NAME,
        Path(sys.prefix) / "share" / "chaosrunner" / FOLDER_NAME,
    ]


class UnresolvedReference(ValueError):
    """A reference cannot be expanded; ``field`` says which key is at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ConditionLibrary:
    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self._conditions: dict[str, tuple[LibraryCondition, Path]] | None = None

    @classmethod
    def for_scenario(cls, scenario_path: Path) -> ConditionLibrary:
        folders = [Path(entry) for entry in os.environ.get(ENV_LIBRARY, "").split(os.pathsep) if entry]
        for ancestor in scenario_path.resolve().parents:
            if (ancestor / FOLDER_NAME).is_dir():
                folders.append(ancestor / FOLDER_NAME)
                break
        folders.append(Path.cwd() / FOLDER_NAME)
        folders.extend(bundled_folders())
        unique = list(dict.fromkeys(folder.resolve() for folder in folders if folder.is_dir()))
        return cls(unique)

    def _load(self) -> dict[str, tuple[LibraryCondition, Path]]:
        if self._conditions is None:
            self._conditions = {}
            for folder in self.folders:
                for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                    condition = read_model(path, LibraryCondition)
                    self._conditions.setdefault(condition.name, (condition, path))
        return self._conditions

    def names(self) -> list[str]:
        return sorted(self._load())

    def expand(self, reference: ConditionReference) -> dict[str, Any]:
        """The inline condition a reference stands for (raises UnresolvedReference)."""
        found = self._load().get(reference.use)
        if found is None:
            known = self.names()
            where = ", ".join(str(folder) for folder in self.folders) or "no abort_conditions/ folder found"
            hint = did_you_mean(reference.use, known) or (f"; known: {', '.join(known)}" if known else "")
            raise UnresolvedReference(
                "use", f"unknown abort condition {reference.use!r}{hint} (searched {where})"
            )
        condition, path = found
        unknown = sorted(set(reference.params) - set(condition.params))
        if unknown:
            declared = ", ".join(sorted(condition.params)) or "none"
            raise UnresolvedReference(
                "params", f"{reference.use!r} takes no param {unknown[0]!r} (it takes: {declared})"
            )
        values = {name: spec.default for name, spec in condition.params.items()} | dict(reference.params)
        missing = sorted(name for name, value in values.items() if value is None)
        if missing:
            raise UnresolvedReference("params", f"{reference.use!r} needs a value for param {missing[0]!r}")
        expr = string.Template(condition.expr).substitute(
            {name: escape_label_value(value) for name, value in values.items() if value is not None}
        )
        inline: dict[str, Any] = {
            "name": reference.name or condition.name,
            "expr": expr,
            "comparator": (reference.comparator or condition.comparator).value,
            "threshold": condition.threshold if reference.threshold is None else reference.threshold,
            "for": reference.for_ if reference.for_ is not None else condition.for_,
            "description": condition.description,
            "origin": _display(path),
        }
        return inline
