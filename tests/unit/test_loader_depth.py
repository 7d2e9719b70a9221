"""A scenario nested thousands of levels deep is bad input: exit 2, a located error, no traceback.

PyYAML composes nodes recursively, so a deep enough document used to end in
a RecursionError traceback (exit 1) before our own depth check ever ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.errors import ScenarioError
from chaosrunner.scenario.loader import load_document
from chaosrunner.scenario.yaml_source import MAX_DEPTH, parse
from tests.support.cli import run_chaosrunner

HEADER = "metadata: {title: deep, owner: t, expected_severity: P2, hypothesis: h}\n"


def flow_lists(depth: int) -> str:
    return HEADER + "faults: " + "[" * depth + "]" * depth + "\n"


def flow_mappings(depth: int) -> str:
    return HEADER + "faults: " + "{a: " * depth + "1" + "}" * depth + "\n"


def block_mappings(depth: int) -> str:
    return HEADER + "faults:\n" + "".join(" " * level + "a:\n" for level in range(1, depth + 1))


DEEP = {
    # text, then the line and column of the first node past the limit: the list opened at level
    # MAX_DEPTH + 1, or the key of the mapping at level MAX_DEPTH (a key is one level further in)
    "flow-lists": (flow_lists(5000), 2, len("faults: ") + MAX_DEPTH + 1),
    "flow-mappings": (flow_mappings(5000), 2, len("faults: ") + 4 * (MAX_DEPTH - 1) + 2),
    "block-mappings": (block_mappings(3000), 2 + MAX_DEPTH, MAX_DEPTH + 1),
}


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("shape", sorted(DEEP))
def test_a_deeply_nested_scenario_exits_2_with_a_located_error(
    tmp_path: Path, command: str, shape: str
) -> None:
    text, line, column = DEEP[shape]
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    result = run_chaosrunner(command, str(path))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert f"{path}:{line}:{column}" in result.stderr
    assert f"nested too deep (more than {MAX_DEPTH} levels)" in result.stderr


def test_nesting_at_the_limit_is_still_read(tmp_path: Path) -> None:
    data, _ = parse("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    depth, node = 0, data["a"]
    while node:
        depth, node = depth + 1, node[0]
    assert depth == MAX_DEPTH - 2  # the outermost list holds the rest


def test_aliases_cannot_build_what_the_text_does_not_show(tmp_path: Path) -> None:
    """Each anchored list is shallow, but aliases stack them past the limit."""
    half = MAX_DEPTH // 2 + 2
    text = (
        HEADER
        + "x: &x " + "[" * half + "]" * half + "\n"
        + "faults: " + "[" * half + "*x" + "]" * half + "\n"
    )  # fmt: skip
    path = tmp_path / "aliases.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_document(path)
    assert f"nested too deep (more than {MAX_DEPTH} levels)" in caught.value.problems[0].message
