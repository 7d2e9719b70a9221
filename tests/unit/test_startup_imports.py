"""Start-up stays light: --help and validate never import the heavy clients.

Checked in a fresh interpreter (the test process has imported everything), by
looking at sys.modules after the command ran - not by timing it; the timing is
bench/startup.py's job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "kubernetes",
    "docker",
    "matplotlib",
    "psycopg",
    "prometheus_api_client",
    "pandas",
    "rich",
    # the live run's server starts only with a gameday run
    "starlette",
    "uvicorn",
    "sse_starlette",
    "anyio",
    "slack_sdk",
)

PROBE = """
import json, sys
from chaosrunner.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="chaosrunner", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def loaded_modules(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("validate", "scenarios", "abort_conditions"),
        ("plan", "scenarios/anatomy.yaml"),
        ("run", "--help"),
        ("mark", "--help"),
    ],
    ids=["help", "validate", "plan", "run-help", "mark-help"],
)
def test_commands_import_no_heavy_library(
    args: tuple[str, ...], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    heavy = loaded_modules(*args) & set(HEAVY)
    assert not heavy, f"chaosrunner {' '.join(args)} imported {sorted(heavy)}"


def test_help_does_not_even_import_pydantic(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    assert "pydantic" not in loaded_modules("--help")
