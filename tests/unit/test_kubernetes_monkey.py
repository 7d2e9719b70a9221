"""The Chaos Monkey's random pod selector: only pods that opted in, and only one of them."""

from __future__ import annotations

from chaosrunner.faults.kubernetes.selection import PodSelector


def test_random_alone_selects_the_opted_in_pods() -> None:
    assert PodSelector(random=True).label_query() == "chaosrunner.io/monkey=enabled"


def test_random_narrows_any_other_criterion_to_opted_in_pods() -> None:
    query = PodSelector(random=True, labels={"app": "checkout"}).label_query()
    assert query == "app=checkout,chaosrunner.io/monkey=enabled"


def test_without_random_nothing_is_added() -> None:
    assert PodSelector(labels={"app": "checkout"}).label_query() == "app=checkout"
