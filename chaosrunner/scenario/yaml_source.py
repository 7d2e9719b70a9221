"""YAML to plain data, remembering where every value came from.

PyYAML's ``safe_load`` forgets line numbers, and silently keeps the last of two
duplicate keys. A scenario author needs ``file:line:column`` for every mistake,
so we compose the node graph ourselves: each value's path (``("faults", 0,
"params", "signal")``) maps to the position of its key and of its value.

The walk also defends the loader against hostile or accidental input: alias
cycles, alias "billion laughs" expansion and very deep nesting all become
ordinary located errors instead of hangs or RecursionError. Depth is checked
twice: while PyYAML composes the node graph (its composer recurses once per
level, so a few thousand ``[`` would overflow the stack before our walk ever
started), and again in our walk, where aliases can stack shallow anchored
pieces into a deep value the text does not show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

MAX_NODES = 200_000
MAX_DEPTH = 64
"""Collections inside collections; real scenarios use under ten levels."""


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class SourceError(Exception):
    """Text that is not a usable YAML document; carries the position."""

    def __init__(self, message: str, position: Position, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.path = path


@dataclass
class SourceMap:
    """Positions of values and keys by path, with nearest-ancestor fallback."""

    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, at_key: bool = False) -> Position:
        table = self.keys if at_key else self.values
        if path in table:
            return table[path]
        for end in range(len(path) - 1, -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return Position(1, 1)

    def has(self, path: Path) -> bool:
        return path in self.values


def _position(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)


def _too_deep(position: Position, path: Path = ()) -> SourceError:
    return SourceError(f"nested too deep (more than {MAX_DEPTH} levels)", position, path)


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose a node nested deeper than MAX_DEPTH.

    ``compose_node`` calls itself once per level; counting the calls stops a
    deep document at the level where it passes the limit, long before Python's
    recursion limit, and names that place.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # collections around the node being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self._depth > MAX_DEPTH:
            raise _too_deep(_position(self.peek_event().start_mark))
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    def __init__(self) -> None:
        self.source_map = SourceMap()
        self.constructor = yaml.constructor.SafeConstructor()
        self.visited = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise SourceError(
                f"document too large (over {MAX_NODES} values after expanding aliases)",
                _position(node.start_mark),
                path,
            )
        if len(path) > MAX_DEPTH:  # aliases can stack shallow pieces into a deep value
            raise _too_deep(_position(node.start_mark), path)
        if id(node) in self.active:
            raise SourceError(
                "an alias refers to its own parent (recursive alias)",
                _position(node.start_mark),
                path,
            )
        self.source_map.values.setdefault(path, _position(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            self.active.add(id(node))
            try:
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.active.add(id(node))
        try:
            own_pairs = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
            try:
                self.constructor.flatten_mapping(node)  # resolves `<<` merge keys
            except yaml.YAMLError as exc:
                raise SourceError(
                    f"bad merge key: {_problem(exc)}", _position(node.start_mark), path
                ) from exc
            merged_pairs = len(node.value) - own_pairs  # flatten puts merged pairs first
            result: dict[str, Any] = {}
            own_keys: set[str] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    raise SourceError(
                        f"keys must be plain strings, found {key_node.tag.rsplit(':', 1)[-1]} key",
                        _position(key_node.start_mark),
                        path,
                    )
                child = (*path, key)
                if index >= merged_pairs and key in own_keys:  # a merged key may be overridden once
                    first = self.source_map.keys[child]
                    raise SourceError(
                        f"duplicate key {key!r} (first defined at line {first.line})",
                        _position(key_node.start_mark),
                        child,
                    )
                if index >= merged_pairs:
                    own_keys.add(key)
                self.source_map.keys[child] = _position(key_node.start_mark)
                result[key] = self.build(value_node, child)
            return result
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise SourceError(f"unreadable value: {_problem(exc)}", _position(node.start_mark), path) from exc
        if isinstance(value, bytes | set | tuple):  # !!binary, !!set, !!python/tuple-likes
            raise SourceError(f"unsupported YAML type {node.tag!r}", _position(node.start_mark), path)
        return value


def _problem(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parse(text: str, syntax: str = "YAML") -> tuple[Any, SourceMap]:
    """Parse one YAML document; return its data and where each value came from.

    JSON is parsed as the YAML it is a subset of; ``syntax`` only names the
    format in error messages, so a broken ``.json`` file is not called YAML.
    """
    try:
        node = yaml.compose(text, Loader=_DepthLimitedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        started = (
            f" (the construct started at line {exc.context_mark.line + 1})"
            if exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line
            else ""
        )
        raise SourceError(f"{syntax} syntax error: {_problem(exc)}{started}", _position(mark)) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"{syntax} error: {_problem(exc)}", Position(1, 1)) from exc
    if node is None:
        raise SourceError("the file is empty", Position(1, 1))
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except RecursionError as exc:  # not expected below MAX_DEPTH; still never a traceback
        raise _too_deep(Position(1, 1)) from exc
    return data, builder.source_map
