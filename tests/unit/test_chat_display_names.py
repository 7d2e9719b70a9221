"""Display names within a time budget: cached for the run, late answers kept, failures not re-asked at once.

The lookup is a function at our own seam (``users.info`` sits behind it in
``slack_api``); these tests hand in their own and watch what it is asked.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from chaosrunner.gameday.chat.display_names import RETRY_FAILED_AFTER, DisplayNames

pytestmark = pytest.mark.unit


class Directory:
    """Names by id; an id not here is a failed lookup. ``hold`` makes lookups wait until released."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, user_id: str) -> str | None:
        self.asked.append(user_id)
        self.release.wait(10)
        return self.names.get(user_id)


def test_names_are_looked_up_once_per_run() -> None:
    directory = Directory({"U1": "Maria", "U2": "Rosa"})
    names = DisplayNames(directory)
    try:
        assert names.resolve(["U1", "U2", "U1"]) == {"U1": "Maria", "U2": "Rosa"}
        assert names.resolve(["U2", "U1"]) == {"U2": "Rosa", "U1": "Maria"}
        assert sorted(directory.asked) == ["U1", "U2"]
    finally:
        names.close()


def test_a_slow_lookup_is_not_waited_for_past_the_budget_but_its_answer_is_kept() -> None:
    directory = Directory({"U1": "Maria"})
    directory.release.clear()
    names = DisplayNames(directory)
    try:
        assert names.resolve(["U1"], budget=0.05) == {}  # the caller falls back to user_name
        directory.release.set()
        assert names.resolve(["U1"], budget=5) == {"U1": "Maria"}  # the same lookup, not a second
        assert directory.asked == ["U1"]
    finally:
        names.close()


def test_a_failed_lookup_is_asked_again_only_after_a_while() -> None:
    now = [1000.0]
    directory = Directory({})
    names = DisplayNames(directory, clock=lambda: now[0])
    try:
        assert names.resolve(["U404"]) == {}
        assert names.resolve(["U404"]) == {}
        assert directory.asked == ["U404"]
        now[0] += RETRY_FAILED_AFTER + 1
        directory.names["U404"] = "Found Later"
        assert names.resolve(["U404"]) == {"U404": "Found Later"}
    finally:
        names.close()


def test_a_lookup_that_raises_is_a_failed_lookup() -> None:
    def broken(user_id: str) -> str | None:
        raise RuntimeError("boom")

    names = DisplayNames(broken)
    try:
        assert names.resolve(["U1"]) == {}
    finally:
        names.close()


def test_a_lookup_stuck_on_slack_never_holds_the_process_open_at_exit() -> None:
    # A thread pool's workers are joined at exit: a users.info that never answers would keep the
    # runner's process alive after its run. The lookups run on daemon threads instead.
    script = """
import threading, time
from chaosrunner.gameday.chat.display_names import DisplayNames
names = DisplayNames(lambda user_id: time.sleep(600))
assert names.resolve(["U1", "U2"], budget=0.1) == {}
print("exiting", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout) == (0, "exiting\n"), done.stderr
