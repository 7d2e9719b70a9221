"""Set-up for the console benchmark: a live gameday run, its console links, pages that time what they show.

``GamedayRun`` starts ``chaosrunner run --mode gameday`` as its own process
(the server lives in the runner's process, as in a real gameday, and the
benchmark's threads do not share its GIL), reads the console links it prints
on stderr and reads its journal. ``Seen`` is a MutationObserver installed in
a page before its own scripts: it records ``Date.now()`` the first time a
text carrying the benchmark's marker appears anywhere in the DOM, so a mark
counts as shown even if the page later trims its timeline. Browser and
benchmark read the same machine clock.

The scenario is engine_harness.Target's (a paused container, an exhausted
PostgreSQL role, an abort condition ``trigger`` on a pushed metric) plus a
second condition ``probe`` on a metric of its own with ``for: 1h``: pushing
it over the threshold makes the monitor journal ``pending`` and never aborts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from engine_harness import PUSHGATEWAY, Target

from chaosrunner.engine.journal import parse_time

PROBE_METRIC = "chaosrunner_bench_probe"
LINK = re.compile(r"^(facilitator console|team link|observer link)[^:]*: (http\S+)#token=(\S+)\s*$")
CAPABILITY = {"facilitator console": "facilitator", "team link": "team", "observer link": "observer"}


def push_gauge(job: str, metric: str, value: float) -> None:
    body = f"# TYPE {metric} gauge\n{metric} {value}\n".encode()
    request = urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{job}", data=body, method="PUT")
    urllib.request.urlopen(request, timeout=5).close()


def write_scenario(target: Target, folder: Path, *, max_duration_s: int) -> Path:
    """Target's scenario in gameday mode, with the ``probe`` condition and a long enough run."""
    path = target.scenario(folder)
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["abort_conditions"].append(
        {
            "name": "probe",
            "expr": f'max({PROBE_METRIC}{{job="{target.job}-probe"}})',
            "comparator": ">",
            "threshold": 0.5,
            "for": "1h",
        }
    )
    data["gameday"] = {"mode": "gameday", "max_duration": f"{max_duration_s}s"}
    path.write_text(yaml.safe_dump(data))
    return path


class GamedayRun:
    """One ``chaosrunner run`` in gameday mode, in its own process."""

    def __init__(self, scenario: Path, folder: Path) -> None:
        self.folder = folder
        self.runs = Path(os.environ["CHAOSRUNNER_STATE_DIR"]) / "runs"
        self.earlier = set(self.runs.glob("*/journal.jsonl"))  # other runs of this benchmark
        self.out = open(folder / "run.stdout", "wb")  # noqa: SIM115 - closed in close()
        self.err_path = folder / "run.stderr"
        self.err = open(self.err_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner", "run", str(scenario), "--plain"],
            stdout=self.out,
            stderr=self.err,
            # the report each run writes at its end goes beside the run, not into the checkout
            env={**os.environ, "CHAOSRUNNER_REPORTS_DIR": str(folder / "reports")},
        )
        self.links: dict[str, tuple[str, str]] = {}  # capability -> (base URL, token)
        self.journal_path: Path | None = None
        self._events: list[dict[str, Any]] = []
        self._read_to = 0

    def wait_ready(self, *, links: bool = True, timeout: float = 60.0) -> None:
        """Until both faults are injected and (with ``links``) the three console links are printed."""
        deadline = time.monotonic() + timeout
        while (links and len(self.links) < 3) or self.count("fault_injected") < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gameday run did not get ready:\n{self.err_path.read_text()[-2000:]}")
            for line in self.err_path.read_text(errors="replace").splitlines():
                found = LINK.match(line)
                if found:
                    self.links[CAPABILITY[found.group(1)]] = (found.group(2).rstrip("/"), found.group(3))
            time.sleep(0.2)

    def _journal(self) -> Path | None:
        if self.journal_path is None:
            found = set(self.runs.glob("*/journal.jsonl")) - self.earlier
            self.journal_path = found.pop() if found else None
        return self.journal_path

    @property
    def run_id(self) -> str:
        path = self._journal()
        assert path is not None
        return path.parent.name

    def events(self) -> list[dict[str, Any]]:
        """Every journal event so far; reads only what was appended since the last call."""
        path = self._journal()
        if path is None:
            return []
        with open(path, "rb") as handle:
            handle.seek(self._read_to)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits for the next call
        self._read_to += len(complete)
        for line in complete.splitlines():
            try:
                self._events.append(json.loads(line))
            except ValueError:
                continue  # a partial line left by a crash
        return self._events

    def count(self, kind: str) -> int:
        return sum(1 for event in self.events() if event["type"] == kind)

    def url(self, capability: str) -> str:
        base, token = self.links[capability]
        return f"{base}/#token={token}"

    def cpu_seconds(self) -> float:
        """CPU time the runner process (engine, monitor and server) has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the runner reverts and finishes
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.out.close()
        self.err.close()


def journal_epoch(event: dict[str, Any]) -> float:
    return parse_time(event["time"]).timestamp()


def post_mark(run: GamedayRun, capability: str, text: str, by: str) -> str | None:
    """POST /api/marks with a note carrying ``text``: None on 201, else why not (one line)."""
    base, token = run.links[capability]
    body = json.dumps({"event": "note", "value": text, "by": by, "role": "responder"}).encode()
    request = urllib.request.Request(
        f"{base}/api/marks",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return None if response.status == 201 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: {error.read(200).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def cli_mark(run: GamedayRun, text: str, by: str) -> bool:
    """``chaosrunner mark RUN note TEXT``: another process, writing the journal directly."""
    done = subprocess.run(
        [sys.executable, "-m", "chaosrunner", "mark", run.run_id, "note", text, "--by", by],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0


# Installed before the page's own scripts: the first time a marker text is in the
# DOM, record when. Text nodes and attribute-free text only (what people read).
SEEN_SCRIPT = """
(() => {
  const pattern = /%s-[a-z]+-\\d+/g;
  const seen = new Map();
  window.__benchSeen = seen;
  const look = (text) => {
    if (!text) return;
    for (const found of text.matchAll(pattern)) {
      if (!seen.has(found[0])) seen.set(found[0], Date.now());
    }
  };
  const observer = new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'characterData') look(record.target.data);
      for (const node of record.addedNodes) look(node.textContent);
    }
  });
  observer.observe(document, {childList: true, subtree: true, characterData: true});
})();
"""


OUR_BLOCKED_SCRIPT = "Blocked script execution in 'about:blank' because the document's frame is sandboxed"


class Seen:
    """A console page whose DOM is watched for the benchmark's marker texts."""

    def __init__(self, browser: Any, url: str, marker: str, name: str, role: str) -> None:
        self.context = browser.new_context()
        self.context.add_init_script(SEEN_SCRIPT % marker)
        # The person's name and role, as the page asks once per browser.
        self.context.add_init_script(
            f"try {{ localStorage.setItem('chaosrunner.console.name', {json.dumps(name)});"
            f" localStorage.setItem('chaosrunner.console.role', {json.dumps(role)}); }} catch (e) {{}}"
        )
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.goto(url)

    def _console(self, message: Any) -> None:
        # Our init scripts are injected into every frame, the report's sandboxed (script-less)
        # iframe too, where Chromium blocks them and says so: that error is ours, not the page's.
        if message.type == "error" and not message.text.startswith(OUR_BLOCKED_SCRIPT):
            self.errors.append(message.text)

    def when(self, text: str) -> float | None:
        """Epoch seconds the text first appeared, or None."""
        shown = self.page.evaluate("(text) => window.__benchSeen && window.__benchSeen.get(text)", text)
        return shown / 1000 if shown else None

    def shown(self, prefix: str) -> set[str]:
        texts = self.page.evaluate(
            "(prefix) => [...(window.__benchSeen || new Map()).keys()].filter(t => t.startsWith(prefix))",
            prefix,
        )
        return set(texts)

    def close(self) -> None:
        self.context.close()
