"""Every broken file gets one clear FILE:LINE:COLUMN error and exit code 2.

Each file in broken_scenarios/ states its expected error on its first line:
``# expect: LINE:COLUMN | FIELD | start of the message``. Files that cannot
hold a comment (empty, not UTF-8) are listed here instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaosrunner.cli import cli
from chaosrunner.errors import ScenarioError
from chaosrunner.scenario.loader import load_document

FOLDER = Path(__file__).parent / "broken_scenarios"
UNCOMMENTABLE = {
    "01-empty.yaml": (1, 1, "", "the file is empty"),
    "23-not-utf8.yaml": (1, 1, "", "not UTF-8 text"),
}


def expectation(path: Path) -> tuple[int, int, str, str]:
    if path.name in UNCOMMENTABLE:
        return UNCOMMENTABLE[path.name]
    match = re.match(r"# expect: (\d+):(\d+) \| (.*?) \| (.*)$", path.read_text().splitlines()[0])
    assert match, f"{path.name} has no '# expect:' header"
    line, column, field, message = match.groups()
    return int(line), int(column), field, message


BROKEN = sorted(FOLDER.glob("*.yaml"))


def test_there_are_at_least_twenty_broken_files() -> None:
    assert len(BROKEN) >= 20


@pytest.mark.parametrize("path", BROKEN, ids=lambda path: path.stem)
def test_loader_reports_one_located_problem(path: Path) -> None:
    line, column, field, message = expectation(path)
    with pytest.raises(ScenarioError) as caught:
        load_document(path)
    problems = caught.value.problems
    assert len(problems) == 1, [str(problem) for problem in problems]
    problem = problems[0]
    assert (problem.file, problem.line, problem.column, problem.field) == (
        str(path),
        line,
        column,
        field,
    )
    assert problem.message.startswith(message)


@pytest.mark.parametrize("path", BROKEN, ids=lambda path: path.stem)
def test_cli_exits_2_with_the_location_and_no_traceback(path: Path) -> None:
    line, column, _, _ = expectation(path)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}:{column}: " in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.stdout == ""
