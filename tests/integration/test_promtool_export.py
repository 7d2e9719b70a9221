"""`chaosrunner export-promtool` on the real rig: a run where an alert fires becomes a promtool test.

The run injects a fault while a gauge pushed through the rig's Pushgateway
crosses an alert rule's threshold; Prometheus fires the alert. The exported
file must pass `promtool test rules` with the real rule file, and fail
against a copy whose threshold is raised so the alert could no longer fire:
the test guards detection, it does not merely restate itself.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario
from tests.support.cli import run_chaosrunner

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def promtool(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def fired_run(
    tmp_path: Path, prometheus_url: str, pushgateway: Any, prometheus_rules: Any, rig: Any
) -> dict[str, Any]:
    """A finished run during which ``ExportLevelHigh_<job>`` fired; its id, alert and rule file."""
    job = pushgateway.job
    alert = f"ExportLevelHigh_{job}"
    gauge = f'chaos_export_level{{job="{job}"}}'
    pushgateway.push("chaos_export_level", 0)
    rule_file = prometheus_rules.add(
        [
            {
                "name": f"{job}-export",
                "interval": "1s",
                "rules": [
                    {
                        "alert": alert,
                        "expr": f"{gauge} > 5",
                        "for": "2s",
                        "labels": {"severity": "page"},
                        "annotations": {"summary": "level high on {{ $labels.job }}"},
                    }
                ],
            }
        ]
    )
    rig.wait_for(lambda: rig.prom_query(prometheus_url, gauge), timeout=30, what="the gauge in Prometheus")
    time.sleep(3)  # a few quiet samples before the run
    scenario = {
        "metadata": {
            "title": f"export {job}",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "target": {"prometheus": prometheus_url},
        "faults": [{"name": "level", "kind": "inprocess.flag", "params": {"flag": job}, "duration": "16s"}],
        "detection": {"synthetic": [alert]},
        "gameday": {"max_duration": "1m"},
    }
    path = tmp_path / "export.yaml"
    path.write_text(yaml.safe_dump(scenario))
    events: list[dict[str, Any]] = []
    runner = Runner(
        load_scenario(path),
        str(path),
        PrometheusHTTP(prometheus_url),
        RunOptions(handle_signals=False),
        [events.append],
    )
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
    thread.start()
    rig.wait_for(lambda: any(e["type"] == "fault_injected" for e in events), timeout=20, what="the fault")
    time.sleep(2)
    pushgateway.push("chaos_export_level", 10)  # the fault's effect
    rig.wait_for(
        lambda: rig.prom_query(prometheus_url, f'ALERTS{{alertname="{alert}",alertstate="firing"}}'),
        timeout=30,
        what=f"{alert} firing",
    )
    time.sleep(6)  # firing for a while
    pushgateway.push("chaos_export_level", 0)
    thread.join(90)
    result = outcome["result"]
    assert result.status is RunStatus.COMPLETED
    time.sleep(2)  # the last samples scraped
    return {"run_id": result.run_id, "alert": alert, "rule_file": Path(rule_file), "job": job}


def test_an_exported_run_passes_promtool_and_fails_when_the_threshold_would_not_fire(
    fired_run: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "detection.yml"
    # --alert: other tests share the rig's Prometheus, and their alerts fire during this run too
    alert = ("--alert", fired_run["alert"])
    done = run_chaosrunner("export-promtool", fired_run["run_id"], *alert, "-o", str(out), env=os.environ)
    assert done.returncode == 0, done.stderr
    assert fired_run["alert"] in done.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = yaml.safe_load(out.read_text())
    assert document["rule_files"] == [str(fired_run["rule_file"])]
    test = document["tests"][0]
    assert test["interval"] == "1s"
    series = {item["series"]: item["values"] for item in test["input_series"]}
    [(name, values)] = [
        (name, values) for name, values in series.items() if name.startswith("chaos_export_level")
    ]
    assert f'job="{fired_run["job"]}"' in name
    assert "10+0x" in values and "0+0x" in values  # compressed: quiet, high, quiet again
    firing = [case for case in test["alert_rule_test"] if case["exp_alerts"]]
    quiet = [case for case in test["alert_rule_test"] if not case["exp_alerts"]]
    assert len(firing) == 1 and len(quiet) == 1
    [expected] = firing[0]["exp_alerts"]
    assert expected["exp_labels"]["severity"] == "page" and expected["exp_labels"]["job"] == fired_run["job"]
    assert expected["exp_annotations"] == {"summary": f"level high on {fired_run['job']}"}

    passed = promtool(out)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    # The same detection against a rule whose threshold the gauge never reached: promtool must fail.
    raised = tmp_path / "raised-threshold.yml"
    rules = json.loads(fired_run["rule_file"].read_text())
    rules["groups"][0]["rules"][0]["expr"] = rules["groups"][0]["rules"][0]["expr"].replace("> 5", "> 50")
    raised.write_text(json.dumps(rules))
    out_raised = tmp_path / "detection-raised.yml"
    done = run_chaosrunner(
        "export-promtool",
        fired_run["run_id"],
        *alert,
        "-o",
        str(out_raised),
        "--rule-file",
        str(raised),
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr
    failed = promtool(out_raised)
    assert failed.returncode != 0
    assert fired_run["alert"] in failed.stdout + failed.stderr


def test_export_refuses_an_unknown_alert_and_bounds_what_it_fetches(
    fired_run: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "never.yml"
    done = run_chaosrunner("export-promtool", fired_run["run_id"], "-o", str(out), "--alert", "NoSuchAlert")
    assert done.returncode == 2
    assert "--alert NoSuchAlert: not an alert rule" in done.stderr and "Traceback" not in done.stderr
    done = run_chaosrunner(
        "export-promtool",
        fired_run["run_id"],
        "--alert",
        fired_run["alert"],
        "-o",
        str(out),
        "--max-samples",
        "10",
    )
    assert done.returncode == 2 and "more than --max-samples 10" in done.stderr
    assert not out.exists()  # nothing half-done
    done = run_chaosrunner("export-promtool", "20990101-000000-nosuch", "-o", str(out))
    assert done.returncode == 2 and "no run" in done.stderr


def test_a_run_journaled_without_alert_rules_falls_back_to_prometheus_and_says_so(
    fired_run: dict[str, Any], tmp_path: Path
) -> None:
    runs = tmp_path / "state" / "runs"
    older = runs / (
        fired_run["run_id"][:-6] + "01d000"
    )  # the same run, as a version before the event journaled it
    older.mkdir(mode=0o700)
    lines = (runs / fired_run["run_id"] / "journal.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["type"] != "alert_rules"]
    (older / "journal.jsonl").write_text("".join(kept))
    out = tmp_path / "older.yml"
    done = run_chaosrunner("export-promtool", older.name, "--alert", fired_run["alert"], "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "alert rules: fetched from" in text and "the journal has no alert_rules event" in text
    assert promtool(out).returncode == 0
