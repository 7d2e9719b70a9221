"""The one jinja2 environment both text renderers share, with the report's filters.

HTML and Markdown are rendered from templates (``report/templates``), so a
facilitator's wording changes are template edits, not code. Both get the
same filters - all spelt by ``report.fmt`` - so a figure reads the same in
either. Autoescaping is per template: on for ``.html.j2``, off for
``.md.j2`` (Markdown escapes its own table cells with ``md``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from chaosrunner.report import fmt

TEMPLATES = Path(__file__).parent / "templates"


def _duration(value: Any) -> str:
    if value is None:
        return fmt.NOT_MEASURED
    return fmt.duration(value if isinstance(value, timedelta) else float(value))


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipe, no newline, no HTML tag."""
    text = " ".join(str(value).split()).replace("\\", "\\\\").replace("|", "\\|")
    return _TAG_START.sub("&lt;", text)  # "< 1" stays readable; "<script" does not become a tag


def md_code(value: Any) -> str:
    """Text for a `code span` in a table cell: literal, so only the pipe and backticks need care."""
    return " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")


@lru_cache(maxsize=1)
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        {
            "duration": _duration,
            "clock": fmt.clock,
            "stamp": fmt.stamp,
            "number": fmt.number,
            "human": fmt.human,
            "score": _score,
            "md": md_cell,
            "md_code": md_code,
        }
    )
    return env
