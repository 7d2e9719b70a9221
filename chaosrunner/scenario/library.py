"""The abort-condition library: reusable PromQL conditions referenced by name.

A scenario says ``use: error-rate-above`` with ``params: {job: checkout}``;
the library finds ``abort_conditions/*.yaml`` with that name and fills its
``${placeholders}``. Where the library lives, in this order (the first
definition of a name wins):

1. ``explicit``: the folders given with ``--library`` and in
   ``CHAOSRUNNER_LIBRARY`` (os.pathsep-separated);
2. ``scenario``: ``abort_conditions/`` beside the scenario file;
3. ``project``: ``./abort_conditions`` of the working folder;
4. ``bundled``: the library that ships with chaosrunner (the checkout's
   ``abort_conditions/``, or ``<prefix>/share/chaosrunner/`` where a wheel
   installs it), so the bundled demo works from any folder.

Nothing else: folders *above* the scenario are never searched. They used to
be (the nearest ``abort_conditions/`` walking up), so a file planted in a
shared ancestor - ``/tmp/abort_conditions/error-rate-above.yaml`` with
``expr: vector(0)`` - silently replaced the shipped condition with one that
can never fire. A local definition may still override a bundled one on
purpose; the condition's ``origin`` then names both files (``PATH; shadows
OTHER``), and ``plan`` and ``run`` print a warning.

Placeholder values are escaped for a PromQL string literal, since they are
almost always label values (``job="${job}"``).
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrunner.scenario.document import read_model
from chaosrunner.scenario.models import ConditionReference, LibraryCondition
from chaosrunner.scenario.problems import did_you_mean

ENV_LIBRARY = "CHAOSRUNNER_LIBRARY"
FOLDER_NAME = "abort_conditions"
# Joins, in a condition's origin, the file in use and each file it hides.
SHADOWS = "; shadows "


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


@dataclass(frozen=True)
class LibraryFolder:
    path: Path
    source: str  # explicit | scenario | project | bundled


class ConditionLibrary:
    def __init__(self, folders: list[Path] | list[LibraryFolder]) -> None:
        bundled = {folder.resolve() for folder in bundled_folders()}
        self.folders = [
            folder
            if isinstance(folder, LibraryFolder)
            else LibraryFolder(folder, "bundled" if folder.resolve() in bundled else "explicit")
            for folder in folders
        ]
        self._conditions: dict[str, tuple[LibraryCondition, Path]] | None = None
        self._shadowed: dict[str, list[Path]] = {}

    @classmethod
    def for_scenario(cls, scenario_path: Path, explicit: Sequence[Path] = ()) -> ConditionLibrary:
        """The folders a scenario's ``use:`` names are looked up in (see the module docstring)."""
        from_env = [Path(entry) for entry in os.environ.get(ENV_LIBRARY, "").split(os.pathsep) if entry]
        candidates = [
            *(LibraryFolder(folder, "explicit") for folder in [*explicit, *from_env]),
            LibraryFolder(scenario_path.resolve().parent / FOLDER_NAME, "scenario"),
            LibraryFolder(Path.cwd() / FOLDER_NAME, "project"),
            *(LibraryFolder(folder, "bundled") for folder in bundled_folders()),
        ]
        bundled = {folder.resolve() for folder in bundled_folders()}
        unique: dict[Path, LibraryFolder] = {}
        for candidate in candidates:
            if not candidate.path.is_dir():
                continue
            resolved = candidate.path.resolve()
            # The checkout's own folder is the bundled library, even when it is also ./abort_conditions.
            source = "bundled" if resolved in bundled else candidate.source
            unique.setdefault(resolved, LibraryFolder(resolved, source))
        return cls(list(unique.values()))

    def _load(self) -> dict[str, tuple[LibraryCondition, Path]]:
        if self._conditions is None:
            self._conditions = {}
            for folder in self.folders:
                for path in sorted([*folder.path.glob("*.yaml"), *folder.path.glob("*.yml")]):
                    condition = read_model(path, LibraryCondition)
                    if condition.name in self._conditions:
                        self._shadowed.setdefault(condition.name, []).append(path)
                    else:
                        self._conditions[condition.name] = (condition, path)
        return self._conditions

    def shadowed(self, name: str) -> list[Path]:
        """Other definitions of ``name`` that the one in use hides (a local override of a shipped one)."""
        self._load()
        return list(self._shadowed.get(name, []))

    def names(self) -> list[str]:
        return sorted(self._load())

    def expand(self, reference: ConditionReference) -> dict[str, Any]:
        """The inline condition a reference stands for (raises UnresolvedReference)."""
        found = self._load().get(reference.use)
        if found is None:
            known = self.names()
            where = (
                ", ".join(f"{folder.path} ({folder.source})" for folder in self.folders)
                or "no abort_conditions/ folder found"
            )
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
            "origin": _display(path)
            + "".join(f"{SHADOWS}{_display(other)}" for other in self.shadowed(reference.use)),
        }
        return inline


def split_origin(origin: str) -> tuple[str, list[str]]:
    """A condition's ``origin`` as (the file it came from, the files it shadows)."""
    used, *shadowed = origin.split(SHADOWS)
    return used, shadowed
