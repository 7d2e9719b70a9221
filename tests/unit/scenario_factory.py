"""Valid scenario documents to start tests (and mutations) from."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "metadata": {
        "title": "Checkout pool exhausted",
        "owner": "payments-sre",
        "expected_severity": "P2",
        "hypothesis": "Checkout sheds load and recovers without manual action.",
        "tags": ["database"],
    },
    "target": {"prometheus": "http://127.0.0.1:19090"},
    "steady_state": [{"name": "up", "expr": "min(up)", "comparator": "==", "threshold": 1}],
    "faults": [
        {
            "name": "flag",
            "kind": "inprocess.flag",
            "params": {"flag": "x"},
            "start": "0s",
            "duration": "30s",
        },
        {
            "name": "late-flag",
            "kind": "inprocess.flag",
            "params": {"flag": "y"},
            "start": "10s",
            "duration": "1m",
        },
    ],
    "abort_conditions": [
        {
            "name": "errors",
            "expr": "sum(rate(errors_total[1m]))",
            "comparator": ">",
            "threshold": 5,
            "for": "5s",
        },
        {"use": "error-rate-above", "params": {"job": "checkout"}, "threshold": 0.2},
    ],
    "detection": {
        "synthetic": ["ProbeFailing"],
        "real_user": ["ErrorRateHigh"],
        "infrastructure": ["PoolFull"],
    },
    "mitigation": {
        "sli": "1 - error_ratio",
        "comparator": ">=",
        "objective": 0.99,
        "confirm_for": "20s",
    },
    "gameday": {"mode": "gameday", "ttd_target": "2m", "ttm_target": "10m", "max_duration": "15m"},
    "scoring": {"weights": {"status_updates": 20}},
}


def scenario_data(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(overrides)
    return data


def write_scenario(folder: Path, data: dict[str, Any] | None = None, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data if data is not None else scenario_data(), sort_keys=False))
    return path
