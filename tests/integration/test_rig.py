"""Proof that every service of the test rig (scripts/services.sh) really works."""

from __future__ import annotations

import http.server
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# a tiny HTTP server inside a container: GET / answers "hello from <hostname>"
SERVER_PY = """
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + socket.gethostname()).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

# client: fetch a URL, print the body, exit 1 on any error (2 s timeout)
FETCH_PY = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
except Exception as exc:
    print("ERROR", repr(exc)); sys.exit(1)
"""


def _fetch_from(container: Any, url: str) -> tuple[int, str]:
    code, out = container.exec_run(["python3", "-c", FETCH_PY, url])
    return code, out.decode(errors="replace").strip()


@pytest.fixture()
def network(docker_client: Any, unique_name: str, test_labels: dict[str, str]) -> Any:
    return docker_client.networks.create(unique_name, driver="bridge", labels=test_labels)


def _run_server(docker_client: Any, image: str, name: str, labels: dict[str, str], **kwargs: Any) -> Any:
    return docker_client.containers.run(
        image, ["python3", "-c", SERVER_PY], name=name, labels=labels, detach=True, **kwargs
    )


def _run_idle(docker_client: Any, image: str, name: str, labels: dict[str, str], **kw: Any) -> Any:
    return docker_client.containers.run(image, ["sleep", "300"], name=name, labels=labels, detach=True, **kw)


# --------------------------------------------------------------------- docker


def test_container_runs_python(
    docker_client: Any, test_image: str, test_labels: dict[str, str], unique_name: str
) -> None:
    out = docker_client.containers.run(
        test_image,
        ["python3", "-c", "import sys, ssl, sqlite3; print('py', sys.version_info[:2])"],
        name=unique_name,
        labels=test_labels,
        remove=True,
    )
    assert out.decode().strip() == "py (3, 11)"


def test_container_reaches_container_by_name(
    rig: Any,
    docker_client: Any,
    test_image: str,
    test_labels: dict[str, str],
    unique_name: str,
    network: Any,
) -> None:
    server = _run_server(docker_client, test_image, f"{unique_name}-srv", test_labels, network=network.name)
    client = _run_idle(docker_client, test_image, f"{unique_name}-cli", test_labels, network=network.name)
    url = f"http://{server.name}:8000/"
    result = rig.wait_for(
        lambda: (r := _fetch_from(client, url))[0] == 0 and r,
        timeout=20,
        what=f"{url} from {client.name}",
    )
    assert result[1].startswith("hello from ")


def test_host_reaches_published_port(
    rig: Any, docker_client: Any, test_image: str, test_labels: dict[str, str], unique_name: str
) -> None:
    server = _run_server(
        docker_client,
        test_image,
        unique_name,
        test_labels,
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    server.reload()
    host_port = server.ports["8000/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{host_port}/"
    _status, body = rig.wait_for(
        lambda: (r := rig.http("GET", url, timeout=2))[0] == 200 and r,
        timeout=20,
        what=f"{url} from the host",
    )
    assert body.decode().startswith("hello from ")


def test_iptables_in_container_netns(
    rig: Any,
    docker_client: Any,
    test_image: str,
    test_labels: dict[str, str],
    unique_name: str,
    network: Any,
) -> None:
    server = _run_server(docker_client, test_image, f"{unique_name}-srv", test_labels, network=network.name)
    client = _run_idle(docker_client, test_image, f"{unique_name}-cli", test_labels, network=network.name)
    url = f"http://{server.name}:8000/"
    rig.wait_for(lambda: _fetch_from(client, url)[0] == 0, timeout=20, what=f"{url} reachable")

    server.reload()
    pid = str(server.attrs["State"]["Pid"])
    rule = ["INPUT", "-p", "tcp", "--dport", "8000", "-j", "REJECT", "--reject-with", "tcp-reset"]

    def nsenter_iptables(*args: str) -> str:
        proc = subprocess.run(
            ["nsenter", "-t", pid, "-n", "iptables", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
        assert proc.returncode == 0, f"iptables {args}: {proc.stderr}"
        return proc.stdout

    nsenter_iptables("-I", *rule)
    try:
        assert "--dport 8000" in nsenter_iptables("-S", "INPUT")
        code, out = _fetch_from(client, url)
        assert code == 1 and "refused" in out.lower(), out
    finally:
        nsenter_iptables("-D", *rule)
    code, out = _fetch_from(client, url)
    assert code == 0, out
    # the rule lived only in the container's namespace, never on the host
    host_rules = subprocess.run(
        ["iptables", "-S", "INPUT"], capture_output=True, text=True, check=True
    ).stdout
    assert "--dport 8000 -j REJECT" not in host_rules


# --------------------------------------------------------------------- PostgreSQL


def test_postgres_direct_and_through_pgbouncer(
    postgres_dsn: str, pgbouncer_dsn: str, unique_name: str
) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select current_database()").fetchone() == (unique_name,)
        conn.execute("create table t (v text)")
        conn.execute("insert into t values ('direct')")
        version = conn.execute("show server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 150000
    with psycopg.connect(pgbouncer_dsn) as conn:
        assert conn.execute("select current_database()").fetchone() == (unique_name,)
        conn.execute("insert into t values ('bouncer')")
        port = conn.execute("select inet_server_port()").fetchone()
    assert port is not None and port[0] == urllib.parse.urlsplit(postgres_dsn).port
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute("select v from t order by v").fetchall()
    assert rows == [("bouncer",), ("direct",)]


def test_pgbouncer_admin_console_pool_size(pgbouncer_base_dsn: str) -> None:
    admin = urllib.parse.urlunsplit(urllib.parse.urlsplit(pgbouncer_base_dsn)._replace(path="/pgbouncer"))
    # the admin console speaks the simple query protocol only
    with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
        cur = conn.cursor()
        cur.execute("SHOW CONFIG")
        config = {row[0]: row[1] for row in cur.fetchall()}
    assert config["default_pool_size"] == "10"
    assert config["listen_addr"] == "127.0.0.1"


# --------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_pushed_metric(rig: Any, prometheus_url: str, pushgateway: Any) -> None:
    job = pushgateway.push("crt_rig_pushed", 42, {"probe": "rig"})
    expr = f'crt_rig_pushed{{job="{job}",probe="rig"}}'
    result = rig.wait_for(lambda: rig.prom_query(prometheus_url, expr), timeout=15, what=expr)
    assert result[0]["value"][1] == "42"


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE crt_rig_target_info gauge\ncrt_rig_target_info 7\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def metrics_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_file_sd_scrape_target(
    rig: Any, prometheus_url: str, scrape_target: Any, metrics_server: str
) -> None:
    job = scrape_target.add(metrics_server, labels={"team": "rig"})
    scrape_target.wait_up()
    result = rig.prom_query(prometheus_url, f'crt_rig_target_info{{job="{job}",team="rig"}}')
    assert result and result[0]["value"][1] == "7"


def test_rule_fires_alert_in_prometheus_and_alertmanager(
    rig: Any, prometheus_url: str, alertmanager_url: str, prometheus_rules: Any, unique_name: str
) -> None:
    alertname = f"RigAlert_{unique_name}"
    prometheus_rules.add(
        [
            {
                "name": unique_name,
                "rules": [
                    {
                        "alert": alertname,
                        "expr": "vector(1)",
                        "labels": {"severity": "test", "rig_test": unique_name},
                        "annotations": {"summary": "rig self-test"},
                    }
                ],
            }
        ]
    )

    def firing_in_prometheus() -> bool:
        alerts = rig.http_json(f"{prometheus_url}/api/v1/alerts")["data"]["alerts"]
        return any(a["labels"].get("alertname") == alertname and a["state"] == "firing" for a in alerts)

    rig.wait_for(firing_in_prometheus, timeout=15, what=f"{alertname} firing in Prometheus")

    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"', "active": "true"})

    def in_alertmanager() -> list[Any]:
        return list(rig.http_json(f"{alertmanager_url}/api/v2/alerts?{query}"))

    alerts = rig.wait_for(in_alertmanager, timeout=15, what=f"{alertname} in Alertmanager")
    assert alerts[0]["labels"]["rig_test"] == unique_name
    assert alerts[0]["labels"]["rig"] == "chaosrunner"  # Prometheus external label


# --------------------------------------------------------------------- the script


def test_services_status_reports_all_running() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), "status"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 6 and all(" running " in line for line in lines), proc.stdout
