"""An imported scenario as a commented YAML file a person can review.

The comments carry what the data cannot: where it came from, how running it
here differs from running the original (we always revert; timings follow
the method), what was left out, and which derived values to check. Each
fault, check and abort condition is preceded by the activity it came from.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from chaosrunner.importers.ctk_experiment import Imported

WIDTH = 96


def _comment(text: str, indent: str = "") -> str:
    lines = textwrap.wrap(text, WIDTH - len(indent) - 2, break_long_words=False, break_on_hyphens=False)
    return "".join(f"{indent}# {line}\n" for line in lines or [""])


def _bullets(items: list[str]) -> str:
    out = ""
    for item in items:
        wrapped = textwrap.wrap(item, WIDTH - 6, break_long_words=False, break_on_hyphens=False) or [""]
        out += f"#   - {wrapped[0]}\n" + "".join(f"#     {line}\n" for line in wrapped[1:])
    return out


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=WIDTH)


def _items(section: str, entries: list[tuple[str, dict[str, Any]]]) -> str:
    out = f"{section}:\n"
    for comment, entry in entries:
        out += _comment(comment) + _dump([entry])
    return out


def render_scenario(imported: Imported) -> str:
    """The whole file: header comments, then each section with its own."""
    header = _comment(
        f"Imported from the Chaos Toolkit experiment {imported.source} by `chaosrunner import ctk`."
    )
    header += "#\n# How this runs differently from `chaos run`:\n" + _bullets(
        [
            "We always revert: every fault is undone at its end, on an abort, on Ctrl-C, and after a crash "
            "(`chaosrunner recover`), whatever the experiment's rollbacks or rollback strategy said. "
            "Rollbacks that undo a fault are its revert; a process rollback is its command's revert argv.",
            "Timings follow the method: each fault starts where its activity ran (pauses before and after "
            "counted, background activities overlapping the next) and holds until the method's end, when "
            "Chaos Toolkit would have checked the hypothesis again and rolled back.",
            "The steady state is checked before injecting and after reverting; abort conditions "
            "(safeguards) are watched the whole run and fail closed if Prometheus cannot answer.",
        ]
    )
    if imported.skipped:
        header += "#\n# LEFT OUT (--skip-unsupported): these do not run here at all:\n" + _bullets(
            [str(refusal) for refusal in imported.skipped]
        )
    if imported.notes:
        header += "#\n# Notes:\n" + _bullets(imported.notes)
    header += "#\n# REVIEW before the first run (derived, not in the experiment):\n" + _bullets(
        imported.review
    )
    header += "#\n# Check it: chaosrunner validate FILE; chaosrunner plan FILE\n"
    body = _dump({"kind": "Scenario", "version": 1}) + "\n"
    body += _dump({"metadata": imported.metadata}) + "\n"
    if imported.target:
        body += _dump({"target": imported.target}) + "\n"
    if imported.steady_state:
        body += _items("steady_state", imported.steady_state) + "\n"
    body += (
        _items(
            "faults",
            [(_fault_comment(draft.comment, draft.notes), draft.as_entry()) for draft in imported.faults],
        )
        + "\n"
    )
    if imported.abort_conditions:
        body += _items("abort_conditions", imported.abort_conditions) + "\n"
    body += _comment("automated: faults end at their duration; max_duration leaves room for the reverts")
    body += _dump({"gameday": imported.gameday})
    return header + "\n" + body


def _fault_comment(comment: str, notes: list[str]) -> str:
    return "; ".join([comment, *notes])
