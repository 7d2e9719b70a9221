"""Kubernetes faults: pods, containers, workloads, nodes, the network, load and PostgreSQL.

One package because the kinds share a lot: the seam to the cluster (``api``:
an interface on plain JSON dicts; ``client``, the only module that imports
the ``kubernetes`` client; ``fake``, an in-memory cluster for unit tests),
which cluster a record talks to (``target``), how chaosrunner marks what it
creates and changes (``ownership``), selection and the namespace allowlist
(``selection``), agents in the cluster (``agent``: the program; ``agents``:
placing it in an ephemeral container or a node pod; ``ephemeral``: the
version-dependent ephemeral-container API), and the sweep behind
``chaosrunner recover --kubernetes`` (``sweep``).

The kinds live in ``pods``, ``workloads``, ``nodes``, ``network``, ``stress``
and ``postgres_job``; importing this package registers them and costs no
``kubernetes`` import. See docs/faults/kubernetes.md.
"""

# Importing the kind modules registers their kinds (the registry imports this package).
import chaosrunner.faults.kubernetes.network
import chaosrunner.faults.kubernetes.nodes
import chaosrunner.faults.kubernetes.pods
import chaosrunner.faults.kubernetes.postgres_job
import chaosrunner.faults.kubernetes.stress
import chaosrunner.faults.kubernetes.workloads  # noqa: F401
