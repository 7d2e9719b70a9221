"""A real gameday on the test rig, and its debrief report: the example in docs/examples/.

Everything here is real except the team, which is this script:

- "checkout" is a loop that opens a PostgreSQL connection as the role
  ``checkout_example`` (CONNECTION LIMIT 4) for each request, 20 times a
  second, and pushes its request counters (``code="200"``/``"503"``) and
  the role's connections in use to the rig's Pushgateway; Prometheus scrapes
  them every second and evaluates three real alert rules (synthetic,
  real-user and infrastructure layers).
- ``chaosrunner run`` (the CLI, in its own process) injects a real
  ``postgres.connection-exhaustion`` of that role: checkout's requests fail
  for real, and the abort conditions watch the real error ratio.
- the "team" marks what it does with ``chaosrunner mark`` at scripted moments
  after t0, and mitigates for real: it terminates the connections of the
  client that holds the pool (the fault's holder, standing in for a leaking
  batch job), so checkout's requests succeed again while the fault is still
  "in place", and the watcher sees the SLI return and ends the run.

The first run plays last quarter's slower team, the second a better one, so
the report's "compared with earlier runs" section has a trend. The second
report is written again after the team's last marks (as a facilitator would,
the morning after) and copied to docs/examples/.

Needs the rig (scripts/services.sh start). Takes about two minutes.
Usage: python bench/report_example.py [--out docs/examples] [--runs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = os.environ.get("CHAOSRUNNER_PROMETHEUS_URL", "http://127.0.0.1:19090")
ALERTMANAGER = os.environ.get("CHAOSRUNNER_ALERTMANAGER_URL", "http://127.0.0.1:19093")
PUSHGATEWAY = os.environ.get("CHAOSRUNNER_PUSHGATEWAY_URL", "http://127.0.0.1:19091")
PG_DSN = os.environ.get("CHAOSRUNNER_PG_DSN", "postgresql://postgres@127.0.0.1:15432/postgres")
RULES_DIR = Path(os.environ.get("CHAOSRUNNER_RIG_DIR", "/var/tmp/chaosrunner-rig")) / "prometheus" / "rules"
ROLE = "checkout_example"
JOB = "checkout-example"
LIMIT = 4
REQUESTS = f'example_checkout_requests_total{{job="{JOB}"}}'
ERRORS = f'example_checkout_requests_total{{job="{JOB}",code=~"5.."}}'
SLI = f"1 - (sum(rate({ERRORS}[10s])) / sum(rate({REQUESTS}[10s])))"
ERROR_RATIO = f"sum(rate({ERRORS}[10s])) / sum(rate({REQUESTS}[10s]))"

RULES = {
    "groups": [
        {
            "name": "checkout-example",
            "interval": "1s",
            "rules": [
                {"alert": "CheckoutProbeFailing", "expr": f"({SLI}) < 0.9", "for": "2s"},
                {"alert": "CheckoutErrorRateHigh", "expr": f"({ERROR_RATIO}) > 0.2", "for": "6s"},
                {
                    "alert": "CheckoutDbConnectionsSaturated",
                    "expr": f'max(example_db_connections_in_use{{job="{JOB}"}}) >= {LIMIT}',
                    "for": "5s",
                },
            ],
        }
    ]
}

SCENARIO: dict[str, Any] = {
    "kind": "Scenario",
    "version": 1,
    "metadata": {
        "title": "Checkout database connections exhausted",
        "description": "A client holds every connection checkout's database role may open.",
        "owner": "payments-sre",
        "tags": ["postgres", "checkout", "example"],
        "expected_severity": "P2",
        "hypothesis": "When checkout's connections run out, the synthetic probe alerts within 30 s "
        "and the team restores checkout within 2 minutes by ending the client that holds them.",
    },
    "target": {
        "prometheus": PROMETHEUS,
        "alertmanager": ALERTMANAGER,
        "postgres": {"dsn_env": "CHAOSRUNNER_PG_DSN"},
    },
    "steady_state": [
        {"name": "checkout-healthy", "expr": SLI, "comparator": ">=", "threshold": 0.99},
        {"name": "monitoring-up", "expr": 'min(up{job="pushgateway"})', "comparator": "==", "threshold": 1},
    ],
    "faults": [
        {
            "name": "hold-checkout-connections",
            "kind": "postgres.connection-exhaustion",
            "params": {"role": ROLE, "leave_free": 0, "grace": "30s"},
        }
    ],
    "abort_conditions": [
        {
            "name": "checkout-down-too-long",
            "expr": ERROR_RATIO,
            "comparator": ">=",
            "threshold": 1,
            "for": "60s",
            "description": "every request failing for a minute: stop, we have learnt enough",
        },
        {"use": "scrape-target-down", "params": {"job": "pushgateway"}},
    ],
    "detection": {
        "synthetic": ["CheckoutProbeFailing"],
        "real_user": ["CheckoutErrorRateHigh"],
        "infrastructure": ["CheckoutDbConnectionsSaturated"],
    },
    "mitigation": {"sli": SLI, "comparator": ">=", "objective": 0.99, "confirm_for": "5s"},
    "gameday": {
        "mode": "gameday",
        "ttd_target": "30s",
        "ttm_target": "2m",
        "status_update_every": "30s",
        "max_duration": "3m",
        "steady_state_timeout": "1m",
    },
}

UPDATE = (
    "checkout failing for nearly all requests; hypothesis: the checkout role's db connections are "
    "exhausted; @bob is checking pg_stat_activity; next update in 30s"
)
TEAMS = {
    # (seconds after t0, mark, value, by, via); "mitigate" is the team's real action
    "last quarter": [
        (14, "detected", None, "support", "user_report"),
        (18, "severity", "P3", "carol"),
        (22, "ic", "carol", "carol"),
        (26, "status", "checkout is down", "carol"),
        (30, "cause", "probably the database", "dave"),
        (38, "change", "restarted checkout", "carol"),
        (44, "mitigate", None, "dave"),
        (46, "change", "terminated the idle connections of the checkout role", "dave"),
        (62, "mitigated", None, "carol"),
    ],
    "this quarter": [
        (6, "severity", "P2", "alice"),
        (7, "ic", "alice", "alice"),
        (10, "status", UPDATE, "alice"),
        (17, "mitigate", None, "bob"),
        (18, "change", "terminated the connections of the client holding the checkout pool", "bob"),
        (24, "status", "errors falling; @bob watching the pool; next update in 30s", "alice"),
        (36, "mitigated", None, "alice"),
        (48, "cause", "a batch job opened connections as the checkout role and never closed them", "bob"),
    ],
}


def push(body: str, group: str) -> None:
    request = urllib.request.Request(
        f"{PUSHGATEWAY}/metrics/job/{JOB}/instance/{group}", data=body.encode(), method="PUT"
    )
    urllib.request.urlopen(request, timeout=5).close()


def query(expr: str) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.loads(response.read())["data"]["result"])


class Checkout:
    """The system under test: 20 requests a second, each a real connection as the checkout role."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, daemon=True),
            threading.Thread(target=self._report, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _serve(self) -> None:
        while not self._stop.wait(0.05):
            try:
                with psycopg.connect(
                    PG_DSN, user=ROLE, connect_timeout=2, application_name="checkout"
                ) as conn:
                    conn.execute("SELECT 1")
                self.ok += 1
            except psycopg.Error:
                self.failed += 1

    def _report(self) -> None:
        admin = psycopg.connect(PG_DSN, autocommit=True)
        try:
            while not self._stop.wait(0.5):
                in_use = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (ROLE,)
                ).fetchone()
                push(
                    "# TYPE example_checkout_requests_total counter\n"
                    f'example_checkout_requests_total{{code="200"}} {self.ok}\n'
                    f'example_checkout_requests_total{{code="503"}} {self.failed}\n'
                    "# TYPE example_db_connections_in_use gauge\n"
                    f"example_db_connections_in_use {in_use[0] if in_use else 0}\n",
                    "checkout",
                )
        finally:
            admin.close()


def admin(sql: str, *args: Any) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql, args or None)


HOGS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s "
    "AND application_name <> 'checkout' AND state = 'idle'"
)


def terminate_hogs() -> None:
    """The team's mitigation: end the idle connections hogging the checkout role.

    Twice, two seconds apart, as an engineer who checks their work would: the
    leaking client grabs freed slots again for the moment it takes to notice it
    was cut off (checkout's own connections are named "checkout" and spared).
    """
    admin(HOGS, ROLE)
    time.sleep(2)
    admin(HOGS, ROLE)


def chaosrunner(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "chaosrunner", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"chaosrunner {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def play(team: str, scenario: Path, env: dict[str, str]) -> tuple[str, str]:
    """One gameday: the run in its own process, the team's marks and mitigation from here."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", str(scenario), "--plain"],
        env=env,
        cwd=REPO,  # abort_conditions/ (the library) is found from here
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        return _drive(team, process, env)
    except BaseException:
        process.terminate()  # the run reverts on SIGTERM; wait for it before anything is cleaned up
        process.wait(timeout=120)
        raise


def _drive(team: str, process: subprocess.Popen[str], env: dict[str, str]) -> tuple[str, str]:
    assert process.stdout is not None
    run_id = ""
    output: list[str] = []
    for line in process.stdout:
        output.append(line)
        print("   ", line.rstrip())
        found = re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6}) started", line)
        if found:
            run_id = found.group(1)
        if "injected hold-checkout-connections" in line:
            break
    else:
        raise SystemExit("the run ended before the fault was injected:\n" + "".join(output))
    t0 = time.monotonic()
    pending = [step for step in TEAMS[team] if step[1] != "cause" or team == "last quarter"]
    late = [step for step in TEAMS[team] if step not in pending]

    def drain() -> None:
        for rest in process.stdout or []:
            output.append(rest)
            print("   ", rest.rstrip())

    reader = threading.Thread(target=drain)
    reader.start()
    for seconds, mark, value, by, *via in pending:
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        if mark == "mitigate":
            threading.Thread(target=terminate_hogs, daemon=True).start()
            continue
        args = [
            "mark",
            run_id,
            mark,
            *([value] if value else []),
            "--by",
            by,
            *(["--via", via[0]] if via else []),
        ]
        chaosrunner(env, *args)
    process.wait(timeout=240)
    reader.join(10)
    for seconds, mark, value, by, *_ in late:  # marks typed after the run, as people do
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        chaosrunner(env, "mark", run_id, mark, value or "", "--by", by)
    report = next(
        (line.split("report: ", 1)[1].strip() for line in output if line.startswith("report: ")), ""
    )
    return run_id, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "examples")
    parser.add_argument("--runs", type=int, default=2, choices=(1, 2))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="chaosrunner-example-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CHAOSRUNNER_STATE_DIR": str(work / "state"),
        "CHAOSRUNNER_REPORTS_DIR": str(work / "reports"),
        "CHAOSRUNNER_PG_DSN": PG_DSN,
    }
    scenario = work / "checkout-db-connections.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    rules = RULES_DIR / "chaosrunner-report-example.yml"
    with contextlib.suppress(psycopg.Error):
        admin(f'DROP ROLE IF EXISTS "{ROLE}"')
    admin(f'CREATE ROLE "{ROLE}" LOGIN CONNECTION LIMIT {LIMIT}')
    rules.write_text(json.dumps(RULES, indent=1))
    urllib.request.urlopen(
        urllib.request.Request(f"{PROMETHEUS}/-/reload", data=b"", method="POST"), timeout=15
    ).close()
    checkout = Checkout()
    checkout.start()
    try:
        print("waiting for checkout's SLI in Prometheus ...")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = query(SLI)
            if result and float(result[0]["value"][1]) >= 0.999:
                break
            time.sleep(1)
        time.sleep(12)  # a clean 10 s rate window before the baseline
        teams = ["last quarter", "this quarter"][-args.runs :]
        run_id = report = ""
        for team in teams:
            print(f"gameday ({team}) ...")
            run_id, report = play(team, scenario, env)
            print(f"run {run_id}: automatic report {report}")
            time.sleep(15)  # the SLI's window forgets the incident before the next run
        print("the morning after: chaosrunner report", run_id)
        chaosrunner(env, "report", run_id, "--out", str(work / "final"))
        print(chaosrunner(env, "history"))
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "final" / "report.html", args.out / "gameday-report.html")
        markdown = (work / "final" / "report.md").read_text()
        (args.out / "gameday-report.md").write_text(
            markdown.replace("](chart.svg)", "](gameday-chart.svg)").replace(
                "](trend.svg)", "](gameday-trend.svg)"
            )
        )
        shutil.copy(work / "final" / "chart.svg", args.out / "gameday-chart.svg")
        if (work / "final" / "trend.svg").exists():
            shutil.copy(work / "final" / "trend.svg", args.out / "gameday-trend.svg")
        shutil.copy(scenario, args.out / "gameday-scenario.yaml")
        print(f"example written to {args.out}")
    finally:
        checkout.stop()
        rules.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            urllib.request.urlopen(
                urllib.request.Request(f"{PROMETHEUS}/-/reload", data=b"", method="POST"), timeout=15
            ).close()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(
                urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{JOB}/instance/checkout", method="DELETE"),
                timeout=5,
            ).close()
        with contextlib.suppress(psycopg.Error):
            admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", ROLE)
            time.sleep(0.5)
            admin(f'DROP ROLE IF EXISTS "{ROLE}"')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
