"""How faults reach their targets: connection settings, never secrets.

These models are the ``target`` section of a scenario as the fault backends see
it. A secret (a PostgreSQL DSN with a password) is never written in a scenario:
the scenario names the environment variable that holds it, and only the
backend's adapter reads the variable, at the moment it connects. That way the
journal, the logs and the reports cannot leak it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DockerConnection(_Settings):
    host: str | None = Field(
        None,
        description="Docker Engine address (unix:// or tcp://); default: DOCKER_HOST, then the local socket",
    )


class PostgresConnection(_Settings):
    dsn_env: str = Field(
        "CHAOSRUNNER_PG_DSN",
        pattern=ENV_VAR_NAME,
        description="name of the environment variable that holds the PostgreSQL DSN",
    )

    def dsn(self) -> str | None:
        """The DSN from the environment, or None when the variable is unset."""
        return os.environ.get(self.dsn_env)


class KubernetesConnection(_Settings):
    kubeconfig: Path | None = Field(
        None, description="kubeconfig file; default: KUBECONFIG, then ~/.kube/config"
    )
    context: str | None = Field(None, description="kubeconfig context; default: the current context")
    in_cluster: bool = Field(False, description="use the pod's service account instead of a kubeconfig")
    namespace: str = Field("default", description="namespace selectors apply to unless they name their own")
    allowed_namespaces: list[str] = Field(
        default_factory=list,
        description="namespaces faults may touch (besides those annotated chaosrunner.io/allow-chaos=true)",
    )


class Connections(_Settings):
    """Per-backend connection settings; a backend reads only its own."""

    docker: DockerConnection = DockerConnection()
    postgres: PostgresConnection = PostgresConnection()
    kubernetes: KubernetesConnection = KubernetesConnection()
