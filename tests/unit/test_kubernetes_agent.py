"""The in-cluster agent's pure parts, and the signal snippet run for real on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from chaosrunner.faults.kubernetes import agent
from chaosrunner.faults.kubernetes.agents import (
    agent_argv,
    node_pod_manifest,
    parse_events,
    signal_argv,
)


def test_agent_argv_is_a_list_with_the_spec_as_one_argument() -> None:
    argv = agent_argv("shape", "chaosrunner:run:f:abcd", {"deadline": 1.0, "note": "a b; $(x)"})
    assert argv[:5] == [
        "python3",
        "-m",
        "chaosrunner.faults.kubernetes.agent",
        "shape",
        "chaosrunner:run:f:abcd",
    ]
    assert json.loads(argv[5])["note"] == "a b; $(x)"


def test_parse_events_skips_other_lines() -> None:
    log = "\n".join(
        [
            "Traceback (most recent call last):",
            json.dumps({"agent": "chaosrunner", "event": "ready", "mechanism": "proxy"}),
            "{not json",
            json.dumps({"event": "ready"}),  # not ours
            json.dumps({"agent": "chaosrunner", "event": "stopped", "cleaned": True}),
        ]
    )
    assert [event["event"] for event in parse_events(log)] == ["ready", "stopped"]


def _fake_proc(root: Path, pid: int, cgroup: str, start: int, state: str = "S") -> None:
    folder = root / str(pid)
    folder.mkdir()
    (folder / "cgroup").write_text(f"12:pids:{cgroup}\n")
    fields = [state, "1"] + ["0"] * 17 + [str(start)]
    (folder / "stat").write_text(f"{pid} (py thon) " + " ".join(fields) + "\n")


def test_container_init_is_the_oldest_process_of_its_cgroup(tmp_path: Path) -> None:
    cid = "a" * 64
    _fake_proc(tmp_path, 300, f"/docker/{cid}", start=900)  # an exec'd process, newer
    _fake_proc(tmp_path, 200, f"/docker/{cid}", start=500)  # the container's PID 1
    _fake_proc(tmp_path, 100, f"/docker/{'b' * 64}", start=100)  # another container
    _fake_proc(tmp_path, 150, f"/docker/{cid}", start=50, state="Z")  # a zombie
    assert agent.container_init(f"docker://{cid}", str(tmp_path)) == 200
    assert [pid for _, pid in agent.container_processes(cid, str(tmp_path))] == [200, 300]


def test_signal_snippet_signals_the_marked_process_and_returns_at_once() -> None:
    marker = f"chaosrunner-test-marker-{time.monotonic_ns()}"
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker + "-not"])
    try:
        argv = signal_argv(marker, 15)
        argv[0] = sys.executable
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
        assert done.stdout.strip() == "1"
        assert victim.wait(timeout=10) == -15
        assert bystander.poll() is None
        assert time.monotonic() - started < 10
    finally:
        for process in (victim, bystander):
            process.kill()
            process.wait()


def test_node_pod_manifest_is_pinned_bounded_and_labelled() -> None:
    manifest = node_pod_manifest(
        "chaosrunner-shape-x",
        "shop",
        "node-1",
        "img:1",
        "IfNotPresent",
        ["python3", "-m", "x"],
        {"app.kubernetes.io/managed-by": "chaosrunner"},
        90.0,
        capabilities=("NET_ADMIN",),
    )
    spec = manifest["spec"]
    assert spec["nodeName"] == "node-1" and spec["hostPID"] is True and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 120  # its lifetime plus the margin: the kubelet ends it
    assert spec["automountServiceAccountToken"] is False
    container = spec["containers"][0]
    assert container["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    assert "privileged" not in json.dumps(manifest)
    assert manifest["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "chaosrunner"}
