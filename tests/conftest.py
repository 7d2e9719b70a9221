"""Shared test set-up: tiers by folder (unit, integration, e2e).

A test's tier comes from where it lives, so no test can forget its marker:
``pytest -m unit`` runs the fast tier alone; ``make test`` runs all three.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True, scope="session")
def _reports_out_of_the_repository(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs write a debrief report at the end; tests keep theirs out of reports/."""
    import os

    os.environ.setdefault("CHAOSRUNNER_REPORTS_DIR", str(tmp_path_factory.mktemp("reports")))


@pytest.fixture(autouse=True, scope="session")
def _kill_switch_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`abort --all` in a test stops this session's runs only, never every run on the machine."""
    import os

    os.environ.setdefault("CHAOSRUNNER_KILL_SWITCH_DIR", str(tmp_path_factory.mktemp("kill-switch")))
