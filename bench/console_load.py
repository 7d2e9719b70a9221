"""The facilitator console under a room's load: event to visible, and the abort path unchanged.

Every run is a real gameday (``chaosrunner run`` in its own process, see
console_harness.py: a paused container and an exhausted PostgreSQL role,
abort conditions on metrics pushed through the Pushgateway, scraped every
second). Pages are headless Chromium (Playwright), one browser context each,
opened on the links the run prints; a MutationObserver in each page records
``Date.now()`` when a mark's unique text first appears in its DOM.

1. Event to visible: one facilitator page; notes posted to ``/api/marks`` with
   the team token, and every fourth one with ``chaosrunner mark`` (another
   process writing the journal, which the server tails). From just before the
   POST (or the command) to the text in the DOM; for the CLI also from the
   journal line's time. Target: under 1 s.
2. Abort reaction under load: one run with 20 pages connected (facilitator,
   team and observer links) and 10 notes a second posted for --minutes.
   Every ~10 s the benchmark pushes the ``probe`` condition (``for: 1h``: it
   can only go pending) over its threshold at t_cross and back; its reaction
   is the journal time of the ``condition ... pending`` event - t_cross. At
   the end the real ``trigger`` is pushed: t_cross -> last ``fault_reverted``
   is the full abort reaction. Then the same without pages or marks for
   --idle-minutes. Targets: probe and abort reaction loaded = idle (ratio ~1);
   no mark lost: marks posted = journaled = shown by every page.

The scrape interval (1 s) is the floor of every reaction and none of our
doing: a reaction is the crossing's phase in the scrape cycle (0-1 s) plus
ours, so a handful of probes is noisy; the final abort is one sample per run.
Also printed: the runner process's CPU (engine, monitor and server), the
browser's errors (uncaught exceptions, console.error), and the load average:
the machine has 2 cores shared by the runner, 20 renderers and this benchmark.

Usage: python bench/console_load.py [--minutes 5] [--idle-minutes 2] [--samples 60]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console_harness import (
    PROBE_METRIC,
    GamedayRun,
    Seen,
    cli_mark,
    journal_epoch,
    post_mark,
    push_gauge,
    write_scenario,
)
from engine_harness import METRIC, PROMETHEUS, Target, delete_trigger, percentile

from chaosrunner.observe.prometheus import PrometheusHTTP

MARKER = "bench" + uuid.uuid4().hex[:6]
PAGES = ("facilitator",) * 4 + ("team",) * 10 + ("observer",) * 6  # the order "shown per page" prints
PROBE_EVERY = 10.0
MARKS_PER_SECOND = 10


def figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.3f} s, p95 {percentile(values, 0.95):.3f} s "
        f"(n={len(values)}, max {max(values):.3f} s)"
    )


def wait_for(check: Callable[[], Any], timeout: float, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every)


def start_run(target: Target, folder: Path, minutes: float, *, links: bool = True) -> GamedayRun:
    """A gameday run with both faults injected; both metrics at 0 and seen so first."""
    prometheus = PrometheusHTTP(PROMETHEUS)
    push_gauge(target.job, METRIC, 0)
    push_gauge(f"{target.job}-probe", PROBE_METRIC, 0)
    for expr in (f'max({METRIC}{{job="{target.job}"}})', f'max({PROBE_METRIC}{{job="{target.job}-probe"}})'):
        if not wait_for(lambda e=expr: prometheus.instant(e).values == (0.0,), 30, every=0.2):
            raise RuntimeError(f"Prometheus does not show {expr} = 0")
    run = GamedayRun(write_scenario(target, folder, max_duration_s=int(minutes * 60) + 300), folder)
    run.wait_ready(links=links)
    return run


def pending_probes(run: GamedayRun) -> list[dict[str, Any]]:
    return [e for e in run.events() if e["type"] == "condition" and e["name"] == "probe"]


def probe_reactions(run: GamedayRun, target: Target, minutes: float) -> list[float]:
    """Push the probe over and back every ~10 s; t_cross -> its journaled ``pending``."""
    reactions: list[float] = []
    end = time.monotonic() + minutes * 60
    job = f"{target.job}-probe"
    while time.monotonic() + PROBE_EVERY <= end:
        slot = time.monotonic() + PROBE_EVERY
        seen = len(pending_probes(run))
        push_gauge(job, PROBE_METRIC, 1)
        crossed = time.time()
        pending = wait_for(lambda s=seen: [e for e in pending_probes(run)[s:] if e["state"] == "pending"], 15)
        push_gauge(job, PROBE_METRIC, 0)
        if pending:
            reactions.append(journal_epoch(pending[0]) - crossed)
        else:
            print("  probe: no pending state within 15 s", file=sys.stderr)
        wait_for(lambda: (pending_probes(run) or [{}])[-1].get("state") == "ok", 15)
        # A random phase of the 1 s scrape cycle for the next crossing.
        time.sleep(max(0.0, slot - time.monotonic()) + random.random())
    return reactions


def final_abort(run: GamedayRun, target: Target) -> tuple[float, float]:
    """Push the real trigger: (t_cross -> the last ``fault_reverted``, t_cross -> ``abort`` journaled)."""
    push_gauge(target.job, METRIC, 1)
    crossed = time.time()
    run.wait_exit(120)
    events = run.events()
    push_gauge(target.job, METRIC, 0)
    reverted = [journal_epoch(e) for e in events if e["type"] == "fault_reverted"]
    aborted = [journal_epoch(e) for e in events if e["type"] == "abort" and e["cause"] == "condition"]
    if len(reverted) != 2 or not aborted:
        raise RuntimeError(
            f"expected an abort and two reverts; journal has {len(aborted)} and {len(reverted)}"
        )
    left = target.wait_clean()
    if left:
        print(f"  LEFT ON THE SYSTEM: {left}", file=sys.stderr)
    return max(reverted) - crossed, aborted[0] - crossed


def event_to_visible(target: Target, folder: Path, browser: Any, samples: int) -> None:
    print(f"1. event to visible: {samples} notes, one facilitator page")
    run = start_run(target, folder, 5)
    try:
        page = Seen(browser, run.url("facilitator"), MARKER, "bench facilitator", "facilitator")
        warm = f"{MARKER}-warm-0"
        post_mark(run, "team", warm, "bench")
        if wait_for(lambda: page.when(warm), 30) is None:
            raise RuntimeError("the facilitator page never showed a mark")
        api: list[float] = []
        cli_command: list[float] = []
        cli_journal: list[float] = []
        missed = 0
        for number in range(samples):
            text = f"{MARKER}-visible-{number}"
            via_cli = number % 4 == 3
            before = time.time()
            if via_cli:
                done = cli_mark(run, text, "bench cli")
            else:
                done = post_mark(run, "team", text, "bench") is None
            shown = wait_for(lambda t=text: page.when(t), 10) if done else None
            if shown is None:
                missed += 1
                continue
            if not via_cli:
                api.append(shown - before)
                continue
            cli_command.append(shown - before)
            line = next(e for e in run.events() if e["type"] == "responder" and e.get("value") == text)
            cli_journal.append(shown - journal_epoch(line))
            time.sleep(0.2)
        print(f"   POST /api/marks -> in the DOM:          {figures(api)}   target < 1 s")
        print(f"   chaosrunner mark: journal -> in the DOM: {figures(cli_journal)}   target < 1 s")
        print(f"   chaosrunner mark: command -> in the DOM: {figures(cli_command)}  (incl. CLI start-up)")
        print(f"   not shown within 10 s: {missed}")
        print_errors(page.errors, len(page.errors))
        page.close()
        final_abort(run, target)
    finally:
        run.close()


def print_errors(errors: list[str], while_live: int) -> None:
    """Browser errors (uncaught exceptions, console.error): how many while the run was live, and which."""
    print(f"   browser errors: {while_live} while the run was live, {len(errors) - while_live} after it")
    for text, count in Counter(errors).most_common(3):
        print(f"     {count} x {text[:160]}")


class MarkPoster(threading.Thread):
    """10 notes a second to /api/marks, on a fixed grid, alternating team and facilitator tokens."""

    def __init__(self, run: GamedayRun) -> None:
        super().__init__(name="mark-poster", daemon=True)
        self.run_ = run
        self.stop = threading.Event()
        self.posted: list[str] = []  # texts answered 201, in order
        self.failures: Counter[str] = Counter()  # why the others were not
        self.started = time.monotonic()

    def run(self) -> None:
        self.started = started = time.monotonic()
        number = 0
        while not self.stop.is_set():
            text = f"{MARKER}-load-{number}"
            capability = "team" if number % 2 else "facilitator"
            refused = post_mark(self.run_, capability, text, f"bench {capability}")
            if refused is None:
                self.posted.append(text)
            else:
                self.failures[refused[:120]] += 1
            number += 1
            self.stop.wait(max(0.0, started + number / MARKS_PER_SECOND - time.monotonic()))


def loaded(
    target: Target, folder: Path, browser: Any, minutes: float
) -> tuple[list[float], tuple[float, float]]:
    print(f"2. loaded: {len(PAGES)} pages, {MARKS_PER_SECOND} notes/s, {minutes:g} min")
    run = start_run(target, folder, minutes)
    pages: list[Seen] = []
    poster = MarkPoster(run)
    try:
        for number, capability in enumerate(PAGES):
            role = {"facilitator": "facilitator", "team": "responder", "observer": "observer"}[capability]
            pages.append(Seen(browser, run.url(capability), MARKER, f"bench {number}", role))
        warm = f"{MARKER}-warm-1"
        post_mark(run, "team", warm, "bench")
        if not wait_for(lambda: all(page.when(warm) for page in pages), 60, every=0.5):
            raise RuntimeError("not every page showed the first mark within 60 s")
        poster.start()
        cpu_before = run.cpu_seconds()
        probes = probe_reactions(run, target, minutes)
        cpu = run.cpu_seconds() - cpu_before
        counted = list(poster.posted)  # marks posted until now: each must be journaled and shown
        refused = Counter(poster.failures)
        seconds = time.monotonic() - poster.started
        expected = set(counted)
        wait_for(lambda: all(expected <= page.shown(MARKER) for page in pages), 15, every=1.0)
        journaled = expected & {e.get("value") for e in run.events() if e["type"] == "responder"}
        shown = [len(expected & page.shown(MARKER)) for page in pages]
        under_load = os.getloadavg()[0]
        errors_live = sum(len(page.errors) for page in pages)
        reaction = final_abort(run, target)  # the pages and the marks still going
        poster.stop.set()
        poster.join(10)
        print(f"   probe reaction (cross -> pending journaled): {figures(probes)}")
        print(
            f"   abort reaction (cross -> all reverted): {reaction[0]:.3f} s (abort journaled {reaction[1]:.3f} s)"
        )
        print(
            f"   marks posted {len(counted)} in {seconds:.0f} s ({len(counted) / seconds:.1f}/s), "
            f"journaled {len(journaled)}; not accepted: {sum(refused.values())}"
        )
        for reason, count in refused.most_common(3):
            print(f"     {count} x {reason}")
        print(f"   shown per page (4 facilitator, 10 team, 6 observer links): {shown}")
        lost = sum(1 for count in shown if count != len(counted))
        print(f"   runner process CPU: {cpu / seconds * 100:.0f}% of one core (engine, monitor, server)")
        print(f"   load average (1 min) before the final abort: {under_load:.2f} on {os.cpu_count()} cores")
        print(f"   pages missing a mark: {lost} of {len(pages)}")
        print_errors([error for page in pages for error in page.errors], errors_live)
        return probes, reaction
    finally:
        poster.stop.set()
        for page in pages:
            page.close()
        run.close()


def idle(target: Target, folder: Path, minutes: float) -> tuple[list[float], tuple[float, float]]:
    print(f"3. idle: no pages, no marks, {minutes:g} min")
    run = start_run(target, folder, minutes, links=False)
    try:
        started, cpu_before = time.monotonic(), run.cpu_seconds()
        probes = probe_reactions(run, target, minutes)
        cpu = (run.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        reaction = final_abort(run, target)
    finally:
        run.close()
    print(f"   runner process CPU: {cpu * 100:.0f}% of one core")
    print(f"   probe reaction (cross -> pending journaled): {figures(probes)}")
    print(
        f"   abort reaction (cross -> all reverted): {reaction[0]:.3f} s (abort journaled {reaction[1]:.3f} s)"
    )
    return probes, reaction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="the loaded run (default 5)")
    parser.add_argument("--idle-minutes", type=float, default=2.0, help="the idle baseline (default 2)")
    parser.add_argument("--samples", type=int, default=60, help="event-to-visible samples (default 60)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    target = Target(uuid.uuid4().hex[:8])
    try:
        with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            event_to_visible(target, Path(folder), browser, args.samples)
            load_probes, load_abort = loaded(target, Path(folder), browser, args.minutes)
            browser.close()
            idle_probes, idle_abort = idle(target, Path(folder), args.idle_minutes)
    finally:
        target.close()
        delete_trigger(f"{target.job}-probe")
    print()
    ratio = statistics.median(load_probes) / statistics.median(idle_probes)
    print(f"probe reaction loaded: {figures(load_probes)}")
    print(f"probe reaction idle:   {figures(idle_probes)}")
    print(f"median ratio loaded/idle: {ratio:.2f}   target ~1 (abort reaction unchanged)")
    print(
        f"abort reaction (cross -> all reverted) loaded {load_abort[0]:.3f} s, idle {idle_abort[0]:.3f} s; "
        f"cross -> abort journaled loaded {load_abort[1]:.3f} s, idle {idle_abort[1]:.3f} s "
        "(one run each; bench/abort_reaction.py: median 1.0 / p95 1.6 s over 20 runs)"
    )
    one, five, fifteen = os.getloadavg()
    print(f"load average at the end: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
