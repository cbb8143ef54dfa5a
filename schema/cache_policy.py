"""Cache policy: how long a query's response may be cached, and for whom.

Hints: a max-age and a scope per type (the entity vocabulary's) and per field. A
response's policy is the most restrictive hint over its selection: the
smallest max-age, and PRIVATE (cached per viewer) when any field is. A field
that names no hint takes its type's; an object type with no hint, an
introspection field or a mutation make the response not cacheable.

The policy is computed from the operation's selection, statically, not from
the executed result. Privacy must not depend on what a field returned: a
viewer-dependent field answers null (`order`, `node` for an order one may not
see) as readily as it answers data, and a null cached as PUBLIC would be served
to the very viewer entitled to the data. Static analysis also settles the scope
before execution, so concurrent identical misses can share one execution, and
it runs once per document. Its cost is conservatism: a field that resolved to
null still counts. Abstract fields are decided by their arguments: `node` and
`nodes` take the hint of the type named in each ID (validated IDs are
`Type:id`), and `products` is PRIVATE when it may list inactive products,
which only admins can.

Example:
    policies = CachePolicies(schema)
    policy = policies.policy(document, operation, coerced_variables)
    if policy.cacheable: ...  # store for policy.max_age s, per viewer if policy.private
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values

from resolvers.errors import InvalidInput
from schema.entities import ENTITIES, Scope
from schema.executor import Document, is_mutation
from schema.global_id import from_global_id


@dataclass(frozen=True, slots=True)
class CacheHint:
    """A bound on a response: at most `max_age` seconds (None: no bound), and per
    viewer when `scope` is PRIVATE (None: no bound)."""

    max_age: float | None = None
    scope: Scope | None = None


PRIVATE = CacheHint(scope=Scope.PRIVATE)
NOT_CACHEABLE = CacheHint(max_age=0)

TYPE_HINTS: dict[str, CacheHint] = {e.type_name: CacheHint(e.max_age, e.scope) for e in ENTITIES}
"""Each entity type's hint, from the vocabulary (schema/entities.py). Every object
type of the schema has a hint here or is STRUCTURAL (a test checks)."""

FIELD_HINTS: dict[tuple[str, str], CacheHint] = {
    ("Query", "viewer"): PRIVATE,
    ("Query", "order"): PRIVATE,
    ("Query", "orders"): PRIVATE,
    ("Query", "users"): PRIVATE,  # admins only
    ("User", "email"): PRIVATE,
    ("User", "role"): PRIVATE,
    ("User", "orders"): PRIVATE,
    ("User", "orderCount"): PRIVATE,
}

STRUCTURAL = frozenset({"Query", "PageInfo", "CreateWebhookPayload"})
"""Types that bound nothing themselves: the root, paging metadata, and payloads only a
mutation answers (never cached: the table does not know them, so NOT_CACHEABLE). A
connection or edge type (`ProductConnection`, `ProductEdge`) takes its node type's hint."""

_WRAPPER_SUFFIXES = ("Connection", "Edge")


def _type_hint(type_name: str) -> CacheHint | None:
    """The hint of an object type; NOT_CACHEABLE for one the table does not know."""
    if type_name in STRUCTURAL:
        return None
    for suffix in _WRAPPER_SUFFIXES:
        if type_name.endswith(suffix) and type_name[: -len(suffix)] in TYPE_HINTS:
            return TYPE_HINTS[type_name[: -len(suffix)]]
    return TYPE_HINTS.get(type_name, NOT_CACHEABLE)


def _hint_of_ids(ids: Iterable[Any]) -> CacheHint:
    hints = []
    for global_id in ids:
        try:
            type_name, _ = from_global_id(str(global_id), field="id")
        except InvalidInput:
            continue  # the field fails with BAD_USER_INPUT: nothing is stored
        hints.append(_type_hint(type_name) or NOT_CACHEABLE)
    return _combine(hints)


def _products_hint(arguments: Mapping[str, Any]) -> CacheHint | None:
    filter_ = arguments.get("filter")
    if filter_ is None:
        return None
    active = filter_.get("active", True) if isinstance(filter_, Mapping) else filter_.active
    return None if active is True else PRIVATE


ArgumentRule = Callable[[Mapping[str, Any]], CacheHint | None]

ARGUMENT_HINTS: dict[tuple[str, str], ArgumentRule] = {
    ("Query", "node"): lambda args: _hint_of_ids([args["id"]]),
    ("Query", "nodes"): lambda args: _hint_of_ids(args["ids"]),
    ("Query", "products"): _products_hint,
}
"""Hints that depend on a field's argument values. For a field returning an
abstract type (`node`), the rule stands in for the hint of that type."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How a response may be cached: for `max_age` seconds (0: not at all), per
    viewer when `private`."""

    max_age: int
    private: bool = False

    @property
    def cacheable(self) -> bool:
        return self.max_age > 0


NO_STORE = CachePolicy(0)


def _combine(hints: Iterable[CacheHint | None]) -> CacheHint:
    max_age = math.inf
    private = False
    for hint in hints:
        if hint is None:
            continue
        if hint.max_age is not None:
            max_age = min(max_age, hint.max_age)
        private = private or hint.scope is Scope.PRIVATE
    return CacheHint(
        None if max_age == math.inf else max_age, Scope.PRIVATE if private else Scope.PUBLIC
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """An operation's policy apart from its argument rules, and those to evaluate."""

    static: CacheHint
    conditional: tuple[tuple[GraphQLField, FieldNode, ArgumentRule], ...]


class _Walk:
    """Collects the hints of every field of a selection, through fragments."""

    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.hints: list[CacheHint | None] = []
        self.conditional: list[tuple[GraphQLField, FieldNode, ArgumentRule]] = []

    def selection_set(self, selection_set: SelectionSetNode, parent: Any) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                type_ = parent if condition is None else self.schema.get_type(condition.name.value)
                self.selection_set(selection.selection_set, type_)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                type_ = self.schema.get_type(fragment.type_condition.name.value)
                self.selection_set(fragment.selection_set, type_)

    def field(self, node: FieldNode, parent: Any) -> None:
        name = node.name.value
        if name in ("__schema", "__type"):
            self.hints.append(NOT_CACHEABLE)
            return
        if isinstance(parent, GraphQLObjectType):
            self.hints.append(_type_hint(parent.name))
        if name == "__typename":
            return
        field = parent.fields[name]
        key = (parent.name, name)
        self.hints.append(FIELD_HINTS.get(key))
        returned = get_named_type(field.type)
        if key in ARGUMENT_HINTS:
            self.conditional.append((field, node, ARGUMENT_HINTS[key]))
        elif isinstance(returned, GraphQLInterfaceType | GraphQLUnionType):
            # Any of its types may come back: the most restrictive of them bounds it.
            possible = self.schema.get_possible_types(returned)
            self.hints.append(_combine(_type_hint(t.name) for t in possible))
        if node.selection_set is not None:
            self.selection_set(node.selection_set, returned)


class CachePolicies:
    """The cache policy of operations of one schema; each operation's plan is built
    once and kept in its document's entry (`Document.plans`), keyed by this object,
    and evicted with it (the executor's document cache bounds the plans).
    """

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema

    def policy(
        self,
        document: Document,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> CachePolicy:
        """The policy of `operation` of a validated `document`, with its coerced variables."""
        if is_mutation(operation):
            return NO_STORE
        plan = self._plan(document, operation)
        hints: list[CacheHint | None] = [plan.static]
        if plan.conditional:
            values = VariableValues(sources={}, coerced=dict(variables))
            for field, node, rule in plan.conditional:
                hints.append(rule(get_argument_values(field, node, values)))
        hint = _combine(hints)
        if not hint.max_age:  # None (nothing bounded it) or 0
            return NO_STORE
        return CachePolicy(int(hint.max_age), hint.scope is Scope.PRIVATE)

    def _plan(self, document: Document, operation: OperationDefinitionNode) -> _Plan:
        key = (self, None if operation.name is None else operation.name.value)
        plan = document.plans.get(key)
        if plan is None:
            walk = _Walk(self.schema, document.fragments)
            walk.selection_set(operation.selection_set, self.schema.query_type)
            plan = document.plans[key] = _Plan(_combine(walk.hints), tuple(walk.conditional))
        return cast("_Plan", plan)
