"""Is an imported scenario valid? The same loader `chaosrunner validate` uses, on the text we wrote.

An import that writes a file `validate` then refuses would hand the problem
to the team; checking here turns any such slip of ours into an error before
anything is written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import Scenario


def validate_text(text: str, name: str = "imported.yaml") -> Scenario:
    """Load ``text`` as a scenario file; ``ScenarioError`` (file, line, field) when it is not valid."""
    with tempfile.TemporaryDirectory(prefix="chaosrunner-import-") as folder:  # 0700 by mkdtemp
        path = Path(folder) / Path(name).name
        path.write_text(text, encoding="utf-8")
        return load_scenario(path)
