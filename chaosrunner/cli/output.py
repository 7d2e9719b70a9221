"""Small printing helpers shared by the commands (JSON, aligned text)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def echo_table(rows: Sequence[tuple[str, ...]], indent: int = 2) -> None:
    """Left-aligned columns; plain text so it pipes and diffs cleanly."""
    if not rows:
        return
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo(" " * indent + "  ".join([*cells, row[-1]]).rstrip())
