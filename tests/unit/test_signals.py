"""Signals that land while the main thread waits on the event they set must not hang it.

A storm of signals against a thread that nearly always sits inside
``Event.wait``: with ``event.set()`` called straight from the handler the
process deadlocks (or recurses to death) within a few hundred signals; with
``set_event_handler`` it counts every wake-up and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PROGRAM = """
import signal, sys, threading
from chaosrunner.signals import set_event_handler
stop = threading.Event()
signal.signal(signal.SIGUSR1, set_event_handler(stop))
print("ready", flush=True)
woken = 0
while woken < 300:
    if stop.wait(0.0001):
        stop.clear()
        woken += 1
signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the storm goes on while we exit
print("done", flush=True)
"""


def test_a_storm_of_signals_never_deadlocks_the_waiting_thread() -> None:
    process = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        os.kill(process.pid, signal.SIGUSR1)
        time.sleep(0.0005)
    alive = process.poll() is None
    if alive:
        process.kill()
    out, _ = process.communicate(timeout=10)
    assert not alive and process.returncode == 0 and out.strip() == "done"
