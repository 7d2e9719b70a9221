"""tc netem: the exact commands, the ownership check, and the kernel probe's verdicts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chaosrunner.faults import netem
from chaosrunner.faults.netem import Netem, Steering, add_commands, delete_command, is_ours


def test_latency_on_all_egress_traffic() -> None:
    assert add_commands("eth0", Netem(delay=0.1, jitter=0.01)) == [
        ["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem", "delay", "100ms", "10ms"]
    ]


def test_latency_with_correlation_and_loss_with_correlation() -> None:
    shape = Netem(delay=0.25, jitter=0.005, delay_correlation=25, loss=2.5, loss_correlation=10)
    assert shape.args() == ["delay", "250ms", "5ms", "25%", "loss", "2.5%", "10%"]


def test_correlation_needs_jitter_to_mean_anything() -> None:
    assert Netem(delay=0.1, delay_correlation=25).args() == ["delay", "100ms"]


def test_loss_alone() -> None:
    assert add_commands("eth1", Netem(loss=5)) == [
        ["tc", "qdisc", "add", "dev", "eth1", "root", "handle", "1:", "netem", "loss", "5%"]
    ]


def test_nothing_to_do_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a delay or a loss"):
        Netem().args()


def test_steering_to_destinations_and_ports_uses_a_prio_band_and_u32_filters() -> None:
    commands = add_commands(
        "eth0", Netem(delay=0.1), Steering(destinations=("10.0.0.5/32",), ports=(5432, 6379))
    )
    to_db = ["match", "ip", "dst", "10.0.0.5/32"]
    filter_head = ["tc", "filter", "add", "dev", "eth0", "protocol", "ip", "parent", "1:", "prio", "4", "u32"]
    assert commands == [
        ["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "prio", "bands", "4"],
        ["tc", "qdisc", "add", "dev", "eth0", "parent", "1:4", "handle", "40:", "netem", "delay", "100ms"],
        [*filter_head, *to_db, "match", "ip", "dport", "5432", "0xffff", "flowid", "1:4"],
        [*filter_head, *to_db, "match", "ip", "dport", "6379", "0xffff", "flowid", "1:4"],
    ]


def test_steering_by_port_only() -> None:
    commands = add_commands("eth0", Netem(loss=1), Steering(ports=(80,)))
    assert commands[-1][-7:] == ["match", "ip", "dport", "80", "0xffff", "flowid", "1:4"]
    assert Steering(ports=(80,)).features() == ("netem", "prio", "u32")
    assert Steering().features() == ("netem",)


def test_revert_deletes_the_root_qdisc() -> None:
    assert delete_command("eth0") == ["tc", "qdisc", "del", "dev", "eth0", "root"]


@pytest.mark.parametrize(
    ("shown", "ours"),
    [
        ("qdisc netem 1: root refcnt 2 limit 1000 delay 100ms  10ms\n", True),
        (
            "qdisc prio 1: root refcnt 2 bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n"
            "qdisc netem 40: parent 1:4 limit 1000 delay 100ms\n",
            True,
        ),
        ("qdisc noqueue 0: root refcnt 2\n", False),
        ("qdisc netem 8001: root refcnt 2 limit 1000 delay 5ms\n", False),  # someone else's netem
        ("qdisc prio 1: root refcnt 2 bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n", False),
        ("", False),
    ],
)
def test_only_our_own_root_qdisc_counts_as_ours(shown: str, ours: bool) -> None:
    assert is_ours(shown) is ours


def test_the_probe_runs_in_a_throwaway_namespace() -> None:
    assert netem.probe_command("netem") == [
        "unshare",
        "--net",
        "tc",
        "qdisc",
        "add",
        "dev",
        "lo",
        "root",
        "netem",
        "delay",
        "1ms",
    ]
    chained = netem.probe_command("u32")
    assert chained[:4] == ["unshare", "--net", sys.executable, "-c"]


def test_a_missing_qdisc_is_reported_with_tc_s_words(monkeypatch: pytest.MonkeyPatch) -> None:
    def tc_without_netem(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 2, "", "Error: Specified qdisc kind is unknown.\n")

    monkeypatch.setattr(netem, "_module_loaded", lambda feature: False)
    monkeypatch.setattr(netem.subprocess, "run", tc_without_netem)
    netem.forget_probes()
    try:
        missing = netem.missing_features(["netem"])
    finally:
        netem.forget_probes()
    assert missing == {"netem": "tc said: Error: Specified qdisc kind is unknown."}
    assert netem.describe_missing(missing) == (
        "sch_netem (CONFIG_NET_SCH_NETEM) is missing (tc said: Error: Specified qdisc kind is unknown.)"
    )
    assert netem.kernel_modules(["netem", "u32"]) == ["sch_netem", "cls_u32"]


def test_a_loaded_module_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(*_: object, **__: object) -> None:
        raise AssertionError("probed although the module is loaded")

    monkeypatch.setattr(netem, "_module_loaded", lambda feature: True)
    monkeypatch.setattr(netem.subprocess, "run", no_probe)
    netem.forget_probes()
    try:
        assert netem.missing_features(["netem", "prio"]) == {}
    finally:
        netem.forget_probes()
