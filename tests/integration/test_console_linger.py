"""An automated run serves its page read-only, and Ctrl-C during --linger ends only the linger.

A real ``chaosrunner run`` (automated mode, the ``inprocess.flag`` fault for
two seconds) on the real Prometheus: it prints one read-only console link
(the observer's token; the facilitator's and the team's are not written),
completes, writes its report, lingers - and SIGINT then ends the linger at
once with the run's own exit code 0, no traceback, and no token file left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_an_automated_run_serves_read_only_and_a_signal_ends_only_the_linger(
    tmp_path: Path, prometheus_url: str
) -> None:
    scenario = tmp_path / "automated.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "metadata": {
                    "title": "Linger",
                    "owner": "tests",
                    "expected_severity": "P3",
                    "hypothesis": "h",
                },
                "target": {"prometheus": prometheus_url},
                "steady_state": [{"name": "up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
                "faults": [
                    {"name": "flag", "kind": "inprocess.flag", "params": {"flag": "linger"}, "duration": "2s"}
                ],
                "gameday": {"mode": "automated", "max_duration": "60s"},
            }
        )
    )
    state = tmp_path / "state"
    env = {
        **os.environ,
        "CHAOSRUNNER_STATE_DIR": str(state),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", "--linger", "5m", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "reports").glob("*/report.html")):
            time.sleep(0.2)
        assert list((tmp_path / "reports").glob("*/report.html")), "the run wrote no report"
        [run] = list((state / "runs").iterdir())
        assert sorted(path.name for path in run.glob("*-token")) == ["observer-token"]
        time.sleep(0.5)  # the report line is out; the run is lingering now
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out + err
    assert re.search(r"^console \(read-only, automated run\): http://127\.0\.0\.1:\d+/#token=\S+$", err, re.M)
    assert "facilitator console" not in err and "Traceback" not in err and "Aborted" not in err
    assert not list(run.glob("*-token"))
