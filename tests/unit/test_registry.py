from __future__ import annotations

import random
import re

import pytest

from chaosrunner.errors import PlanRefused, RegistrationError
from chaosrunner.faults.base import (
    BlastRadius,
    Fault,
    FaultParams,
    FaultPlan,
    FaultRequest,
    choose_targets,
)
from chaosrunner.faults.inprocess import ACTIVE_FLAGS, FlagParams
from chaosrunner.faults.registry import FaultRegistry, registry


class _Complete(Fault):
    kind = "test.complete"
    summary = "A complete fault."

    def plan(self, request: FaultRequest) -> FaultPlan:
        return FaultPlan(fault=request.name, kind=self.kind, targets=[], revert_record={})

    def inject(self, plan: FaultPlan) -> dict:
        return {}

    def revert(self, record: dict) -> None:
        return None

    def check(self, record: dict) -> bool:
        return False


def test_registration_accepts_a_complete_fault() -> None:
    local = FaultRegistry()
    local.register(_Complete)
    assert local.kinds() == ["test.complete"]
    assert local.get("test.complete") is _Complete


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"kind": "NoDots"}, "must look like 'backend.fault-name'"),
        ({"summary": ""}, "needs a one-sentence 'summary'"),
        ({"Params": dict}, "Params must subclass FaultParams"),
        ({"Selector": FaultParams}, "Selector must subclass FaultSelector"),
    ],
)
def test_registration_names_the_plugin_in_its_errors(attributes: dict, message: str) -> None:
    broken = type("BrokenFault", (_Complete,), attributes)
    with pytest.raises(RegistrationError, match=rf"BrokenFault.*{re.escape(message)}"):
        FaultRegistry().register(broken)


def test_an_abstract_fault_is_refused() -> None:
    incomplete = type(
        "HalfFault", (Fault,), {"kind": "test.half", "summary": "x", "plan": lambda self, r: None}
    )
    with pytest.raises(RegistrationError, match=r"HalfFault.*does not implement check, inject, revert"):
        FaultRegistry().register(incomplete)


def test_a_kind_cannot_be_registered_twice_by_different_classes() -> None:
    local = FaultRegistry()
    local.register(_Complete)
    twin = type("Twin", (_Complete,), {})
    with pytest.raises(RegistrationError, match="already registered by _Complete"):
        local.register(twin)


def test_builtins_are_loaded_lazily_and_work() -> None:
    fault_class = registry.get("inprocess.flag")
    assert fault_class is not None
    fault = fault_class()
    plan = fault.plan(FaultRequest(run_id="r1", name="f", params=FlagParams(flag="unit")))
    record = fault.inject(plan)
    assert "unit" in ACTIVE_FLAGS and fault.check(record)
    fault.revert(record)
    fault.revert(record)  # idempotent
    assert "unit" not in ACTIVE_FLAGS and not fault.check(record)


@pytest.mark.parametrize(
    ("radius", "matched", "hit"),
    [
        ({"mode": "one"}, 5, 1),
        ({"mode": "all"}, 5, 5),
        ({"mode": "count", "count": 3}, 5, 3),
        ({"mode": "percent", "percent": 50}, 5, 3),  # rounds up: never zero
        ({"mode": "percent", "percent": 1}, 5, 1),
        ({"mode": "all", "maximum": 5}, 5, 5),
    ],
)
def test_blast_radius_chooses_how_many(radius: dict, matched: int, hit: int) -> None:
    chosen = choose_targets("f", list(range(matched)), BlastRadius(**radius), random.Random(1))
    assert len(chosen) == hit and len(set(chosen)) == hit


@pytest.mark.parametrize(
    ("radius", "matched", "message"),
    [
        ({"mode": "all", "maximum": 3}, 5, "above the blast radius maximum of 3"),
        ({"mode": "percent", "percent": 80, "maximum": 2}, 5, "would hit 4 targets"),
        ({"mode": "count", "count": 6}, 5, "matched only 5"),
        ({"mode": "one"}, 0, "matched no targets"),
    ],
)
def test_blast_radius_refuses_rather_than_trims(radius: dict, matched: int, message: str) -> None:
    with pytest.raises(PlanRefused, match=message):
        choose_targets("f", list(range(matched)), BlastRadius(**radius))
