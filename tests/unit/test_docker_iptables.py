"""Blackhole rules: argv built without a shell, found and deleted by their comment only."""

from __future__ import annotations

import pytest

from chaosrunner.faults.docker import iptables
from chaosrunner.faults.docker.hostaccess import nsenter_net

# Real `iptables -S OUTPUT` output from a rig container holding our rule, another run's and a foreign one.
LISTING = "\n".join(
    [
        "-P OUTPUT ACCEPT",
        '-A OUTPUT -d 10.1.2.5/32 -m comment --comment "chaosrunner:run-2:x" -j DROP',
        '-A OUTPUT -d 10.1.2.4/32 -p udp -m comment --comment "other rule" -j REJECT '
        "--reject-with icmp-port-unreachable",
        "-A OUTPUT -d 10.1.2.3/32 -p tcp -m multiport --dports 80,443 "
        '-m comment --comment "chaosrunner:run-1:cut" -j DROP',
    ]
)


def test_the_comment_names_run_and_fault_and_cannot_carry_odd_characters() -> None:
    assert iptables.rule_comment("run-1", "cut") == "chaosrunner:run-1:cut"
    assert iptables.rule_comment('r 1"; rm -rf /', "cut") == "chaosrunner:r_1_rm_-rf_:cut"
    assert len(iptables.rule_comment("r" * 400, "f")) == iptables.MAX_COMMENT


def test_a_tcp_drop_rule_with_ports() -> None:
    rule = iptables.Blackhole("10.1.2.3/32", "tcp", (80, 443), "drop")
    assert rule.spec("chaosrunner:run-1:cut") == [
        "-d", "10.1.2.3/32", "-p", "tcp", "-m", "multiport", "--dports", "80,443",
        "-m", "comment", "--comment", "chaosrunner:run-1:cut", "-j", "DROP",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "tail"),
    [
        (
            iptables.Blackhole("10.0.0.0/8", "tcp", (), "reject"),
            ["-j", "REJECT", "--reject-with", "tcp-reset"],
        ),
        (iptables.Blackhole("10.0.0.0/8", "udp", (53,), "reject"), ["-j", "REJECT"]),
        (iptables.Blackhole("10.0.0.0/8", "all", (), "drop"), ["-j", "DROP"]),
    ],
)
def test_actions(rule: iptables.Blackhole, tail: list[str]) -> None:
    spec = rule.spec("c")
    assert spec[-len(tail) :] == tail
    assert ("-p" in spec) is (rule.protocol != "all")


def test_ipv6_destinations_use_ip6tables() -> None:
    rule = iptables.Blackhole("fd00::1/128")
    assert rule.family == 6
    assert iptables.insert_argv(rule.family, rule.spec("c"))[:6] == [
        "ip6tables",
        "-w",
        "5",
        "-I",
        "OUTPUT",
        "1",
    ]


def test_commands_are_argument_lists_entered_through_nsenter() -> None:
    spec = iptables.Blackhole("10.1.2.3/32").spec("chaosrunner:r:f")
    assert nsenter_net(4242, iptables.check_argv(4, spec)) == [
        "nsenter", "--target", "4242", "--net", "--", "iptables", "-w", "5", "-C", "OUTPUT", *spec,
    ]  # fmt: skip
    assert iptables.list_argv(4) == ["iptables", "-w", "5", "-S", "OUTPUT"]


def test_only_rules_with_exactly_our_comment_are_found() -> None:
    found = iptables.rules_carrying(LISTING, "chaosrunner:run-1:cut")
    assert found == [
        ["-d", "10.1.2.3/32", "-p", "tcp", "-m", "multiport", "--dports", "80,443",
         "-m", "comment", "--comment", "chaosrunner:run-1:cut", "-j", "DROP"],
    ]  # fmt: skip
    assert iptables.delete_argv(4, found[0])[:5] == ["iptables", "-w", "5", "-D", "OUTPUT"]
    assert iptables.rules_carrying(LISTING, "chaosrunner:run-1:cu") == []


def test_a_sweep_finds_every_chaosrunner_rule_by_prefix_and_no_foreign_one() -> None:
    found = iptables.rules_carrying(LISTING, iptables.COMMENT_PREFIX, prefix=True)
    assert [iptables.comment_of(rule) for rule in found] == ["chaosrunner:run-2:x", "chaosrunner:run-1:cut"]
