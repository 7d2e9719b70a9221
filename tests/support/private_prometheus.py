"""A Prometheus of a test's own, for tests and benchmarks that stop it on purpose.

Fail-closed behaviour is tested by killing Prometheus mid-run; doing that to
the rig's shared instance would break every other test, so those tests start
their own: the same Debian binary, 1 s scrape of the rig's Pushgateway, a
throwaway data folder, a free loopback port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['{pushgateway}']
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePrometheus:
    def __init__(self, pushgateway_url: str) -> None:
        self.binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.folder = Path(tempfile.mkdtemp(prefix="chaosrunner-prom-"))
        pushgateway = pushgateway_url.split("://", 1)[-1].rstrip("/")
        (self.folder / "prometheus.yml").write_text(CONFIG.format(pushgateway=pushgateway))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = (self.folder / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"private Prometheus did not start; see {self.folder / 'prometheus.log'}")

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        shutil.rmtree(self.folder, ignore_errors=True)
