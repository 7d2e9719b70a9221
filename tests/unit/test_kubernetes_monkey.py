"""The Chaos Monkey's random pod selector: only pods that opted in, and only one of them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaosrunner.faults.kubernetes.selection import PodSelector


def test_random_alone_selects_the_opted_in_pods() -> None:
    assert PodSelector(random=True).label_query() == "chaosrunner.io/monkey=enabled"


def test_random_narrows_any_other_criterion_to_opted_in_pods() -> None:
    query = PodSelector(random=True, labels={"app": "checkout"}).label_query()
    assert query == "app=checkout,chaosrunner.io/monkey=enabled"


def test_without_random_nothing_is_added() -> None:
    assert PodSelector(labels={"app": "checkout"}).label_query() == "app=checkout"


def test_a_quoted_true_is_still_random_alone() -> None:
    assert PodSelector.model_validate({"random": "true"}).label_query() == "chaosrunner.io/monkey=enabled"


def test_labels_cannot_widen_the_opt_in() -> None:
    with pytest.raises(ValidationError, match=r"labels cannot ask for chaosrunner\.io/monkey=disabled"):
        PodSelector(random=True, labels={"chaosrunner.io/monkey": "disabled"})
    narrowed = PodSelector(random=True, labels={"chaosrunner.io/monkey": "enabled", "app": "web"})
    assert narrowed.label_query() == "app=web,chaosrunner.io/monkey=enabled"
