"""An API server that enforces RBAC, beside the test cluster's own.

scripts/kube-cluster.sh starts its API server with ``--authorization-mode=
AlwaysAllow``: every identity may do everything, so a test of Roles against
it cannot fail. Restarting the shared cluster with RBAC would cut off every
other test using it, so this starts a second ``kube-apiserver`` on another
loopback port, on the same etcd, certificates and flags (a child of the
test process, so it ends with it), with
``--authorization-mode=Node,RBAC`` - an ordinary HA pair. Requests made
through it are authorized by RBAC, against the same objects the controllers
and the kubelet act on through the first. It is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KUBE_VERSION = os.environ.get("CHAOSRUNNER_KUBE_VERSION", "1.20.2")
CACHE = Path(os.environ.get("CHAOSRUNNER_KUBE_CACHE", f"/var/cache/chaosrunner/kubernetes-{KUBE_VERSION}"))
STATE = Path(os.environ.get("CHAOSRUNNER_KUBE_DIR", "/var/tmp/chaosrunner-kube"))
ETCD_PORT = os.environ.get("CHAOSRUNNER_KUBE_ETCD_PORT", "12379")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    context = ssl.create_default_context(cafile=str(STATE / "pki" / "ca.crt"))
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/readyz",
        headers={"Authorization": f"Bearer {(STATE / 'pki' / 'admin.token').read_text().strip()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def rbac_apiserver(timeout: float = 90.0) -> Iterator[str]:
    """Yield ``https://127.0.0.1:PORT`` of an RBAC-enforcing API server on the test cluster's etcd."""
    pki = STATE / "pki"
    port = _free_port()
    log = (STATE / "logs" / f"rbac-apiserver-{port}.log").open("ab")
    process = subprocess.Popen(
        [
            str(CACHE / "bin" / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            "--insecure-port=0",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--feature-gates=EphemeralContainers=true",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--kubelet-preferred-address-types=Hostname,InternalIP",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--profiling=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(port):
            if process.poll() is not None:
                raise AssertionError(f"the RBAC API server exited ({process.returncode}); see {log.name}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the RBAC API server was not ready after {timeout:g}s; see {log.name}")
            time.sleep(0.5)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()
