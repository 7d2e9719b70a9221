"""Inject a fault from a child process that is SIGKILLed at once: the dead-man's-switch tests.

The child plans and injects like the engine would, prints the revert record,
and kills itself with SIGKILL, so whatever holds the fault (a holder process,
a watchdog) is on its own from then on. ``inject_and_die`` returns the record.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

from chaosrunner.faults.base import Fault, RevertRecord

CHILD = r"""
import json, os, signal, sys
from datetime import timedelta
from importlib import import_module
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.connections import Connections

args = json.loads(sys.argv[1])
module, name = args["fault"].rsplit(".", 1)
fault = getattr(import_module(module), name)()
request = FaultRequest(
    run_id=args["run_id"],
    name=args["name"],
    params=fault.Params(**args["params"]),
    selector=fault.Selector(**args["selector"]) if args["selector"] is not None else None,
    connections=Connections.model_validate(args["connections"]),
    duration=timedelta(seconds=args["duration"]),
)
record = fault.inject(fault.plan(request))
sys.stdout.write(json.dumps(record) + "\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def inject_and_die(
    fault: type[Fault],
    *,
    run_id: str,
    name: str,
    params: dict[str, Any],
    duration: float,
    selector: dict[str, Any] | None = None,
    connections: dict[str, Any] | None = None,
) -> RevertRecord:
    args = {
        "fault": f"{fault.__module__}.{fault.__name__}",
        "run_id": run_id,
        "name": name,
        "params": params,
        "selector": selector,
        "connections": connections or {},
        "duration": duration,
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return dict(json.loads(child.stdout))
