"""Which cluster a fault talks to, written down so that any process can talk to it again.

A revert may run in another process long after the plan: ``chaosrunner
recover`` after a ``kill -9``, a watchdog at its deadline. So the revert record
names the cluster the way a person would - a kubeconfig *path* and a *context
name*, or "in-cluster" - and never holds a token or a certificate.

The context is resolved when the fault is planned: a fault planned against
``staging`` must be reverted against ``staging`` even if somebody runs
``kubectl config use-context prod`` in the meantime. Resolution only reads the
kubeconfig YAML (no ``kubernetes`` import, so planning stays cheap to import).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaosrunner.faults.connections import KubernetesConnection

KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KUBECONFIG = Path("~/.kube/config")


@dataclass(frozen=True)
class KubeTarget:
    kubeconfig: str | None
    """One path or several joined by ``:`` (as in KUBECONFIG); None with in_cluster."""
    context: str | None
    in_cluster: bool = False

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> KubeTarget:
        return cls(data.get("kubeconfig"), data.get("context"), bool(data.get("in_cluster", False)))

    def describe(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        return f"kubeconfig {self.kubeconfig or DEFAULT_KUBECONFIG} (context {self.context or 'current'})"


def kubeconfig_paths(connection: KubernetesConnection, environ: Mapping[str, str] | None = None) -> str:
    """The kubeconfig to use: the scenario's, else $KUBECONFIG, else ~/.kube/config (absolute paths)."""
    env = os.environ if environ is None else environ
    if connection.kubeconfig is not None:
        return str(connection.kubeconfig.expanduser().absolute())
    listed = [part for part in env.get(KUBECONFIG_ENV, "").split(os.pathsep) if part]
    if listed:
        return os.pathsep.join(str(Path(part).expanduser().absolute()) for part in listed)
    return str(DEFAULT_KUBECONFIG.expanduser())


def current_context(paths: str) -> str | None:
    """The first ``current-context`` among the files (kubectl's merge rule), or None."""
    import yaml  # here, not at import: the in-cluster agent image has no PyYAML

    for part in paths.split(os.pathsep):
        try:
            document = yaml.safe_load(Path(part).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(document, dict) and document.get("current-context"):
            return str(document["current-context"])
    return None


def resolve(connection: KubernetesConnection, environ: Mapping[str, str] | None = None) -> KubeTarget:
    """Pin the cluster down: the kubeconfig paths and the context name in force now."""
    if connection.in_cluster:
        return KubeTarget(None, None, in_cluster=True)
    paths = kubeconfig_paths(connection, environ)
    return KubeTarget(paths, connection.context or current_context(paths))
