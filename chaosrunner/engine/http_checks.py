"""Probing the HTTP steady-state checks: the request (observe) joined to its judgement (scenario).

The runner calls ``probe`` before injecting (a failing check refuses the run,
like a PromQL one) and while verifying that steady state returned after the
reverts. What is journaled is what a debrief needs and nothing that could hold
a secret: the status code, the time taken, which expectation failed (or why
there was no answer) - never a header value, never the body.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chaosrunner.observe.http_probe import ProbeFailed, request
from chaosrunner.scenario.http_check import HttpSteadyStateCheck, judge


@dataclass(frozen=True)
class HttpCheckResult:
    name: str
    ok: bool
    status: int | None  # None: no answer
    elapsed: float
    failed: str | None  # the expectation that failed, or why there was no answer

    def detail(self) -> str:
        if self.ok:
            return f"HTTP {self.status} in {self.elapsed:.3f}s"
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        return f"{answer} after {self.elapsed:.3f}s: {self.failed}"

    def journal_fields(self) -> dict[str, Any]:
        """The ``check`` event's fields (name, ok, detail) plus status, elapsed, failed."""
        return {
            "name": f"steady state {self.name}",
            "ok": self.ok,
            "detail": self.detail(),
            "status": self.status,
            "elapsed": self.elapsed,
            "failed": self.failed,
        }


def probe(check: HttpSteadyStateCheck) -> HttpCheckResult:
    """One request, judged. Never raises: a missing variable or no answer is a failed check."""
    spec = check.http
    missing = sorted({variable for variable in spec.header_env.values() if variable not in os.environ})
    if missing:
        return HttpCheckResult(
            check.name, False, None, 0.0, f"environment variable(s) {', '.join(missing)} are not set"
        )
    headers = {**spec.headers, **{name: os.environ[var] for name, var in spec.header_env.items()}}
    try:
        answer = request(
            spec.url,
            method=spec.method,
            headers=headers,
            body=spec.body,
            timeout=spec.timeout.total_seconds(),
        )
    except ProbeFailed as failure:
        return HttpCheckResult(check.name, False, None, round(failure.elapsed, 3), failure.reason)
    failed = judge(spec, answer.status, answer.body)
    return HttpCheckResult(check.name, failed is None, answer.status, answer.elapsed, failed)
