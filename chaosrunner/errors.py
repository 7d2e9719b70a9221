"""Every exception chaosrunner raises on purpose, in one place.

The tree::

    ChaosrunnerError                 anything we raise deliberately
    ├── UserError                    exit 2: the input is wrong; fix it and retry
    │   ├── ScenarioError            a scenario/library/schedule file is invalid;
    │   │                            carries one Problem per mistake, each with
    │   │                            file:line:column and the field path
    │   ├── UsageError               a command was called with impossible arguments
    │   ├── UnknownRun               no run with that id in the state folder
    │   └── QueryRejected            Prometheus refused a PromQL expression
    ├── EnvironmentProblem           exit 3: something we need is not there
    │   ├── ServiceUnreachable       a service (Prometheus, dockerd, PostgreSQL,
    │   │                            the Kubernetes API …) did not answer
    │   ├── KillSwitchEngaged        `chaosrunner abort --all` is in force
    │   ├── JournalUnwritable        the run journal cannot be written (disk full …)
    │   ├── NotPermitted             a state folder or kill switch belongs to someone else
    │   ├── SteadyStateNotMet        the system was unhealthy before we touched it
    │   └── ResultsStoreTooNew       the results store's schema is newer than this
    │                                chaosrunner (upgrade before writing to it)
    ├── RunFailed                    exit 1: the experiment ran and did not hold
    │   └── RunAborted               an abort condition, the kill switch, a signal
    └── FaultError                   a backend could not plan, inject or revert
        ├── PlanRefused              a safety rule refused the plan (exit 2: the
        │                            scenario asks for something it may not have)
        └── RegistrationError        a fault plug-in is malformed (names the plug-in)

Third-party exceptions never cross a layer: each adapter maps its library's
errors at the boundary (``raise ServiceUnreachable(...) from exc``), so callers
only ever handle this tree. The CLI catches ``ChaosrunnerError`` once, prints
``show()`` on stderr and exits with ``exit_code`` - never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class ChaosrunnerError(Exception):
    """Base of every deliberate error; carries the process exit code."""

    exit_code = 1

    def show(self) -> str:
        """The text a person reads on stderr (credentials a library put in a message scrubbed)."""
        from chaosrunner.redaction import redact_text

        return f"error: {redact_text(str(self))}"


class UserError(ChaosrunnerError):
    """The input is wrong: a file, an argument, a reference to something absent."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One mistake in one file, located precisely enough to jump to it."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(UserError):
    """A document failed validation; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))

    def show(self) -> str:
        return "\n".join(f"error: {problem}" for problem in self.problems)


class UsageError(UserError):
    """A command was called with arguments that cannot work together."""


class UnknownRun(UserError):
    """A run id that no journal in the state folder has."""


class EnvironmentProblem(ChaosrunnerError):
    """Something the run needs is missing from the machine or the network."""

    exit_code = 3


class ServiceUnreachable(EnvironmentProblem):
    """A service did not answer; the message names it and its address."""


class KillSwitchEngaged(EnvironmentProblem):
    """The global kill switch is engaged; no run may start until it is released."""


class JournalUnwritable(EnvironmentProblem):
    """A write-ahead event could not be made durable, so its side effect must not happen."""


class NotPermitted(EnvironmentProblem):
    """State we would rely on belongs to another user (a folder, the machine-wide kill switch)."""


class SteadyStateNotMet(EnvironmentProblem):
    """Preflight found the system unhealthy: we refuse to make it worse."""


class QueryRejected(UserError):
    """Prometheus rejected an expression from the scenario (bad PromQL)."""


class RunFailed(ChaosrunnerError):
    """The experiment ran, but the hypothesis did not hold."""

    exit_code = 1


class RunAborted(RunFailed):
    """The run was stopped early; the message names the cause."""


class FaultError(ChaosrunnerError):
    """A fault backend failed to plan, inject, check or revert."""


class PlanRefused(FaultError):
    """A safety rule refused a plan before anything was touched."""

    exit_code = 2


class RegistrationError(FaultError):
    """A fault plug-in is malformed; the message names the plug-in."""

    exit_code = 2


class ResultsStoreTooNew(EnvironmentProblem):
    """The results store was migrated by a newer chaosrunner: this one must not read or write it."""
