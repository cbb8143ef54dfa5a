"""Input values checked before anything runs: nesting depth of variables, control characters.

Two rules hold for every operation, whatever its fields:

- a variable's value (JSON objects and arrays inside `variables`) nests at most
  `MAX_VARIABLE_DEPTH` levels, checked on the raw JSON before coercion and for
  every variable sent, used or not: graphql-core's coercion and anything that
  serializes the variables recurse on that depth;
- no string input carries a C0 control character other than TAB, LF and CR, nor
  DEL (`CONTROL_CHARACTERS`): they are never meaningful in a name, a search or a
  review, PostgreSQL refuses NUL in text, and they forge log lines. Literals are
  checked once per document, variables on each request.

Each failure is a GraphQLError whose `extensions.field` is the input's path
(`filter.search`, `input.lines[0].productId`), for BAD_USER_INPUT.

Example:
    error = variables_too_deep({"filter": {"search": "oak"}})  # None: one level
    document = parse('{ products(filter: {search: "a\\u0000"}) { totalCount } }')
    control_character_in_literals(document).extensions  # {"field": "filter.search"}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    BREAK,
    SKIP,
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    ListValueNode,
    Node,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    VariableDefinitionNode,
    Visitor,
    visit,
)

MAX_VARIABLE_DEPTH = 20
"""Levels of objects and arrays in one variable's value; `{"a": [1]}` is two."""

CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 controls except TAB, LF and CR, and DEL."""


def variables_too_deep(
    variables: Mapping[str, Any] | None, *, max_depth: int = MAX_VARIABLE_DEPTH
) -> GraphQLError | None:
    """An error naming the first variable nested deeper than `max_depth`, or None.

    Iterative, and it stops at the first value past the limit: the cost is
    bounded by the size of the body, never by its depth.
    """
    for name, value in (variables or {}).items():
        stack: list[tuple[Any, int]] = [(value, 0)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, Mapping):
                children: Iterable[Any] = item.values()
            elif isinstance(item, list):
                children = item
            else:
                continue
            if depth + 1 > max_depth:
                return GraphQLError(
                    f"Variable `${name}` is nested more than {max_depth} levels deep.",
                    extensions={"field": name, "maximum": max_depth},
                )
            stack.extend((child, depth + 1) for child in children)
    return None


def control_character_in_variables(
    variables: Mapping[str, Any] | None, names: Iterable[str]
) -> GraphQLError | None:
    """An error for the first string with a control character in the variables
    `names` (those the operation defines), or None."""
    values = variables or {}
    for name in names:
        if name not in values:
            continue
        stack: list[tuple[Any, str]] = [(values[name], name)]
        while stack:
            item, path = stack.pop()
            if isinstance(item, str):
                if CONTROL_CHARACTERS.search(item):
                    return _control_character_error(path, item)
            elif isinstance(item, Mapping):
                stack.extend((v, f"{path}.{k}") for k, v in reversed(list(item.items())))
            elif isinstance(item, list):
                stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
    return None


def control_character_in_literals(document: DocumentNode) -> GraphQLError | None:
    """An error for the first string literal with a control character in an argument
    or a variable's default value anywhere in `document`, or None."""
    finder = _LiteralFinder()
    visit(document, finder)
    return finder.error


class _LiteralFinder(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.error: GraphQLError | None = None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        return self._scan(node.value, node.name.value)

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: Any) -> Any:
        if node.default_value is None:
            return SKIP
        return self._scan(node.default_value, node.variable.name.value)

    def _scan(self, value: ValueNode, path: str) -> Any:
        stack: list[tuple[ValueNode, str]] = [(value, path)]
        while stack:
            item, where = stack.pop()
            if isinstance(item, StringValueNode):
                if CONTROL_CHARACTERS.search(item.value):
                    self.error = _control_character_error(where, item.value, item)
                    return BREAK
            elif isinstance(item, ObjectValueNode):
                stack.extend((f.value, f"{where}.{f.name.value}") for f in reversed(item.fields))
            elif isinstance(item, ListValueNode):
                stack.extend(
                    (v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item.values)))
                )
        return SKIP  # nothing below an argument is another argument


def _control_character_error(path: str, text: str, node: Node | None = None) -> GraphQLError:
    match = CONTROL_CHARACTERS.search(text)
    assert match is not None
    return GraphQLError(
        f"`{path}` contains the control character U+{ord(match.group()):04X}; "
        "only TAB, LF and CR are allowed.",
        node,
        extensions={"field": path},
    )
