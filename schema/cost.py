"""Query cost: priced before execution from the coerced variables, and counted after it.

The rules, in the style of Shopify's calculated cost and the IBM GraphQL cost spec
(the numbers are in `COSTS`, the one table):

- a scalar or enum field costs 0, an object 1; the table overrides either, per
  type ("PageInfo") or per field ("OrderConnection.totalCount");
- a connection (a field with `first` whose type has `edges` and `nodes`) multiplies
  what is selected under `edges` and under `nodes` by its `first`, or the argument's
  default; the edge wrapper itself costs 0, as its node is already counted;
- a plain list multiplies its items by the size the table assumes for it (or by the
  length of a list argument, as `nodes(ids:)`), `DEFAULT_LIST_SIZE` when it has none;
- a mutation field costs a fixed `mutation_cost` plus what it selects;
- an entry keyed by a field and an argument path, `"Query.products(filter.search)"`,
  adds its weight to that field wherever the argument is given (not null, not an
  empty string), as a literal or through a variable: a text search reads rows
  that no page size bounds;
- introspection root fields cost their table weight and are not walked;
- under an interface, fragments on its concrete types cost the dearest of them.

An operation's plan is compiled once per document and kept in the document's entry
of the executor's document cache (schema/analysis.py), evicted with it. Every size
that does not depend on a variable is folded into constants there, so
`requested(variables)` only multiplies out the few sizes that do (`first: $n` costs
n, not 1). Fragments are compiled once each and shared by their spreads, so a
fragment spread many times is counted every time without being walked every time.
`actual(data)` applies the same rules to the response, with the lists' real lengths.

Example:
    costs = CostAnalysis(schema, max_cost=1000)
    price = costs.price(document, operation, coerced_variables)  # QueryTooComplex if over
    result = await executor.execute(...)
    price.requested, price.plan.actual(result.data)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)

from schema.entities import ENTITIES
from schema.errors import QUERY_TOO_COMPLEX
from schema.executor import Document, RequestError

OBJECT_WEIGHT = 1
LEAF_WEIGHT = 0
DEFAULT_LIST_SIZE = 10
MAX_CACHED_PLANS = 1000  # no longer used: plans live (and are evicted) with their document


@dataclass(frozen=True, slots=True)
class Cost:
    """One entry of `COSTS`: the weight of one value, or the assumed size of a list."""

    weight: int | None = None
    size: int | None = None
    size_argument: str | None = None


COSTS: dict[str, Cost] = {
    # Computed from the page already loaded.
    "PageInfo": Cost(weight=0),
    # Plain lists: typical sizes, not worst cases (the actual cost charges what a
    # larger list really returned). Categories form a two-level tree of ~5 children
    # per root; seeded orders have 1..7 items, 4 on average. Larger guesses would
    # price the category tree and the order dashboard over MAX_QUERY_COST.
    "Query.categories": Cost(size=50),
    "Query.nodes": Cost(size_argument="ids"),
    "Category.children": Cost(size=5),
    "Order.items": Cost(size=5),
    # Scalars that cost a statement of their own: the count behind the connection
    # of each listed entity type (schema/entities.py).
    **{f"{e.type_name}Connection.totalCount": Cost(weight=1) for e in ENTITIES if e.connection},
    # Introspection is answered from memory; a flat price per root field.
    "Query.__schema": Cost(weight=10),
    "Query.__type": Cost(weight=1),
    # Arguments that add work of their own. A name search is a trigram-index scan
    # on PostgreSQL (a full scan for patterns under three characters, and on
    # SQLite), run for the page and again for totalCount: priced as ten objects,
    # so thirty aliased searches cost 300, not 30.
    "Query.products(filter.search)": Cost(weight=10),
}


_NO_ENTRY = Cost()


class QueryTooComplex(RequestError):
    """The operation's requested cost is over the maximum: nothing ran."""

    def __init__(self, requested: int, maximum: int) -> None:
        cost = {"requestedQueryCost": requested, "maximumQueryCost": maximum}
        error = GraphQLError(
            f"The query costs {requested}; the maximum is {maximum}.",
            extensions={"cost": cost},
        )
        super().__init__(QUERY_TOO_COMPLEX, [error])
        self.requested = requested
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class _Size:
    """A list's size: `constant`, or the variable's value (its length) when it is given."""

    constant: int
    variable: str | None = None
    length: bool = False

    def value(self, variables: Mapping[str, Any]) -> int:
        if self.variable is None:
            return self.constant
        value = variables.get(self.variable)
        if value is None:  # absent or null: the argument's default applies
            return self.constant
        if self.length:
            return len(value) if isinstance(value, list) else 1
        return max(0, value) if isinstance(value, int) else self.constant


# No operation is free, not even `{ __typename }`: each request is work for the server.
MIN_OPERATION_COST = 1


@dataclass(frozen=True, slots=True)
class _Extra:
    """An argument's weight that depends on a variable: charged when the variable's
    value, followed down `keys`, is given (not null, not an empty string)."""

    weight: int
    variable: str
    keys: tuple[str, ...]

    def value(self, variables: Mapping[str, Any]) -> int:
        value: Any = variables.get(self.variable)
        for key in self.keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return self.weight if _given(value) else 0


@dataclass(slots=True)
class _Field:
    key: str
    weight: int
    size: _Size | None  # None: one value, not a list
    selection: _Selection | None
    extras: tuple[_Extra, ...] = ()  # weights that depend on variables
    static: int | None = None  # the requested cost when no variable is involved
    item_flat: int | None = None  # one item's cost when nothing below it is a list

    def weight_with(self, variables: Mapping[str, Any]) -> int:
        return self.weight + sum(extra.value(variables) for extra in self.extras)


@dataclass(slots=True)
class _Selection:
    fields: list[_Field] = field(default_factory=list)
    spreads: list[_Selection] = field(default_factory=list)  # fragments, shared
    variants: dict[str, _Selection] = field(default_factory=dict)  # on concrete types: max
    static: int | None = None
    flat: int | None = None

    def finish(self) -> _Selection:
        parts = [f.static for f in self.fields] + [s.static for s in self.spreads]
        variants = [v.static for v in self.variants.values()]
        if None not in parts and None not in variants:
            self.static = sum(p or 0 for p in parts) + max((v or 0 for v in variants), default=0)
        flats = [f.item_flat if f.size is None else None for f in self.fields]
        flats += [s.flat for s in self.spreads]
        if None not in flats and not self.variants:
            self.flat = sum(f or 0 for f in flats)
        return self


class CostPlan:
    """An operation's cost, ready to be priced with variables and counted on a response.

    `variables` are those `actual` counts with (an argument's weight may depend on
    them); `CostAnalysis.price` hands out the plan bound to the request's variables.
    """

    def __init__(self, selection: _Selection, variables: Mapping[str, Any] | None = None) -> None:
        self._selection = selection
        self._variables: Mapping[str, Any] = variables or {}

    def requested(self, variables: Mapping[str, Any]) -> int:
        """The cost before execution, with `variables` coerced for the operation."""
        if self._selection.static is not None:
            return max(MIN_OPERATION_COST, self._selection.static)
        return max(MIN_OPERATION_COST, _requested(self._selection, variables, {}))

    def actual(self, data: Mapping[str, Any] | None) -> int:
        """The cost of what was resolved: the same rules over `data`, with real list lengths."""
        if data is None:
            return MIN_OPERATION_COST
        return max(MIN_OPERATION_COST, _actual(self._selection, data, self._variables))

    def bound(self, variables: Mapping[str, Any]) -> CostPlan:
        """This plan counting `actual` with `variables` (itself when none matter)."""
        if self._selection.static is not None:
            return self
        return CostPlan(self._selection, variables)


@dataclass(frozen=True, slots=True)
class Price:
    plan: CostPlan
    requested: int


class CostAnalysis:
    """Prices operations against `schema`; each operation's plan is compiled once and
    kept in its document's entry (`Document.plans`), keyed by this analysis.

    `cache_size` is accepted for compatibility and unused: the document cache bounds
    the plans.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        max_cost: int = 1000,
        mutation_cost: int = 10,
        costs: Mapping[str, Cost] = COSTS,
        cache_size: int = MAX_CACHED_PLANS,
    ) -> None:
        self.schema = schema
        self.max_cost = max_cost
        self.mutation_cost = mutation_cost
        self.costs = costs
        self.argument_costs = _argument_costs(costs)

    def price(
        self,
        document: Document,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> Price:
        """The operation's requested cost; QueryTooComplex when it is over the maximum."""
        plan = self.plan(document, operation)
        requested = plan.requested(variables)
        if requested > self.max_cost:
            raise QueryTooComplex(requested, self.max_cost)
        return Price(plan.bound(variables), requested)

    def plan(self, document: Document, operation: OperationDefinitionNode) -> CostPlan:
        """The compiled plan of a validated operation (kept with the document)."""
        key = (self, None if operation.name is None else operation.name.value)
        plan = document.plans.get(key)
        if plan is None:
            plan = document.plans[key] = CostPlan(_Compiler(self, document).operation(operation))
        return cast("CostPlan", plan)


class _Compiler:
    def __init__(self, analysis: CostAnalysis, document: Document) -> None:
        self.schema = analysis.schema
        self.costs = analysis.costs
        self.argument_costs = analysis.argument_costs
        self.mutation_cost = analysis.mutation_cost
        self.mutation_type = analysis.schema.mutation_type
        self.fragments = document.fragments
        self.compiled: dict[tuple[str, _Size | None], _Selection] = {}

    def operation(self, operation: OperationDefinitionNode) -> _Selection:
        root = self.schema.get_root_type(operation.operation)
        assert root is not None, "validated operations have a root type"
        return self.selection(operation.selection_set, root)

    def selection(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        *,
        page: _Size | None = None,
    ) -> _Selection:
        selection = _Selection()
        self.collect(selection_set, parent, selection, page)
        for variant in selection.variants.values():
            variant.finish()
        return selection.finish()

    def collect(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        into: _Selection,
        page: _Size | None,
    ) -> None:
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                compiled = self.field(node, parent, page)
                if compiled is not None:
                    into.fields.append(compiled)
                continue
            if isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                assert target is not None, "validated fragments have known types"
                self.collect(node.selection_set, target, self.part(into, parent, target), page)
                continue
            assert isinstance(node, FragmentSpreadNode)
            definition = self.fragments[node.name.value]
            target = self.schema.get_type(definition.type_condition.name.value)
            assert target is not None, "validated fragments have known types"
            self.part(into, parent, target).spreads.append(self.fragment(definition, target, page))

    def part(
        self, into: _Selection, parent: GraphQLNamedType, target: GraphQLNamedType
    ) -> _Selection:
        """Where a fragment on `target` counts: with its parent, or as one of its variants."""
        if is_abstract_type(parent) and isinstance(target, GraphQLObjectType):
            return into.variants.setdefault(target.name, _Selection())
        return into

    def fragment(
        self, definition: FragmentDefinitionNode, target: GraphQLNamedType, page: _Size | None
    ) -> _Selection:
        # A fragment on a connection type is sized by the connection it is spread in.
        key = (definition.name.value, page)
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = self.selection(definition.selection_set, target, page=page)
            self.compiled[key] = compiled
        return compiled

    def field(self, node: FieldNode, parent: GraphQLNamedType, page: _Size | None) -> _Field | None:
        name = node.name.value
        key = node.alias.value if node.alias else name
        entry = self.costs.get(f"{parent.name}.{name}", _NO_ENTRY)
        if name.startswith("__"):
            weight = entry.weight or 0
            return _finish(_Field(key, weight, None, None)) if weight else None
        assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
        definition = parent.fields[name]
        item_type = get_named_type(definition.type)
        type_entry = self.costs.get(item_type.name, _NO_ENTRY)
        if parent is self.mutation_type:
            weight = self.mutation_cost
        elif entry.weight is not None:
            weight = entry.weight
        elif type_entry.weight is not None:
            weight = type_entry.weight
        elif is_leaf_type(item_type):
            weight = LEAF_WEIGHT
        else:
            weight = 0 if page is not None and name == "edges" else OBJECT_WEIGHT
        selection = None
        if node.selection_set is not None and not is_leaf_type(item_type):
            selection = self.selection(
                node.selection_set, item_type, page=self.page(node, definition)
            )
        extras: list[_Extra] = []
        for path, extra in self.argument_costs.get(f"{parent.name}.{name}", ()):
            charged = _argument_weight(node, definition, path, extra)
            if isinstance(charged, _Extra):
                extras.append(charged)
            else:
                weight += charged
        if weight == 0 and not extras and (selection is None or selection.static == 0):
            return None
        size = self.size(node, definition, entry, page)
        return _finish(_Field(key, weight, size, selection, tuple(extras)))

    def size(
        self, node: FieldNode, definition: GraphQLField, entry: Cost, page: _Size | None
    ) -> _Size | None:
        if not is_list_type(get_nullable_type(definition.type)):
            return None
        if page is not None and node.name.value in ("edges", "nodes"):
            return page
        if entry.size_argument is not None:
            return _argument(node, definition, entry.size_argument, length=True)
        return _Size(DEFAULT_LIST_SIZE if entry.size is None else entry.size)

    def page(self, node: FieldNode, definition: GraphQLField) -> _Size | None:
        """A connection's page size (its `first`), None for any other field."""
        connection = get_named_type(definition.type)
        if "first" not in definition.args or not isinstance(connection, GraphQLObjectType):
            return None
        if "edges" not in connection.fields or "nodes" not in connection.fields:
            return None
        return _argument(node, definition, "first")


def _argument(
    node: FieldNode, definition: GraphQLField, name: str, *, length: bool = False
) -> _Size:
    """The size an argument gives: its literal, its variable, or else its default."""
    default = _default(definition.args[name])
    fallback = default if isinstance(default, int) and not length else DEFAULT_LIST_SIZE
    argument = next((a for a in node.arguments or () if a.name.value == name), None)
    value = None if argument is None else argument.value
    if value is None or isinstance(value, NullValueNode):
        return _Size(fallback)
    if isinstance(value, VariableNode):
        return _Size(fallback, value.name.value, length)
    if length:  # a single value stands for a list of one
        return _Size(len(value.values) if isinstance(value, ListValueNode) else 1)
    if isinstance(value, IntValueNode):
        return _Size(max(0, int(value.value)))
    return _Size(fallback)


def _argument_costs(costs: Mapping[str, Cost]) -> dict[str, list[tuple[tuple[str, ...], int]]]:
    """The table's argument entries, `"Type.field(a.b)"`, as field -> [(path, weight)]."""
    found: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for key, entry in costs.items():
        coordinate, paren, path = key.partition("(")
        if paren and entry.weight:
            steps = tuple(path.rstrip(")").split("."))
            found.setdefault(coordinate, []).append((steps, entry.weight))
    return found


def _argument_weight(
    node: FieldNode, definition: GraphQLField, path: tuple[str, ...], weight: int
) -> int | _Extra:
    """`weight` when the argument at `path` is given as a literal, 0 when it is not,
    an `_Extra` when a variable decides."""
    argument = next((a for a in node.arguments or () if a.name.value == path[0]), None)
    if argument is None or path[0] not in definition.args:
        return 0
    value: ValueNode | None = argument.value
    input_type: GraphQLInputType = definition.args[path[0]].type
    for depth, name in enumerate(path[1:], start=1):
        if isinstance(value, VariableNode):
            return _Extra(weight, value.name.value, _out_names(input_type, path[depth:]))
        if not isinstance(value, ObjectValueNode):
            return 0
        value = next((f.value for f in value.fields if f.name.value == name), None)
        named = get_named_type(input_type)
        if not isinstance(named, GraphQLInputObjectType) or name not in named.fields:
            return 0
        input_type = named.fields[name].type
    if isinstance(value, VariableNode):
        return _Extra(weight, value.name.value, ())
    if value is None or isinstance(value, NullValueNode):
        return 0
    if isinstance(value, StringValueNode):
        return weight if value.value else 0
    return weight


def _out_names(input_type: GraphQLInputType, path: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of `path` in a coerced value of `input_type` (a field's `out_name`)."""
    keys: list[str] = []
    for name in path:
        named = get_named_type(input_type)
        if not isinstance(named, GraphQLInputObjectType) or name not in named.fields:
            break
        field = named.fields[name]
        keys.append(field.out_name or name)
        input_type = field.type
    return tuple(keys)


def _given(value: Any) -> bool:
    return value is not None and value is not Undefined and value != ""


def _default(argument: GraphQLArgument) -> Any:
    """An argument's default: a coerced value (Strawberry) or an SDL literal (build_schema)."""
    if argument.default_value is not Undefined:
        return argument.default_value
    default = argument.default
    if default is not None and isinstance(default.literal, IntValueNode):
        return int(default.literal.value)
    return None if default is None else default.value


def _finish(compiled: _Field) -> _Field:
    selection = compiled.selection
    below = 0 if selection is None else selection.static
    size = compiled.size
    if below is not None and not compiled.extras and (size is None or size.variable is None):
        compiled.static = (1 if size is None else size.constant) * (compiled.weight + below)
    flat = 0 if selection is None else selection.flat
    if flat is not None and not compiled.extras:
        compiled.item_flat = compiled.weight + flat
    return compiled


def _requested(selection: _Selection, variables: Mapping[str, Any], memo: dict[int, int]) -> int:
    if selection.static is not None:
        return selection.static
    cost = memo.get(id(selection))
    if cost is not None:
        return cost
    cost = 0
    for compiled in selection.fields:
        if compiled.static is not None:
            cost += compiled.static
            continue
        below = 0 if compiled.selection is None else _requested(compiled.selection, variables, memo)
        count = 1 if compiled.size is None else compiled.size.value(variables)
        cost += count * (compiled.weight_with(variables) + below)
    for spread in selection.spreads:
        cost += _requested(spread, variables, memo)
    if selection.variants:
        cost += max(_requested(v, variables, memo) for v in selection.variants.values())
    memo[id(selection)] = cost
    return cost


def _actual(selection: _Selection, data: Mapping[str, Any], variables: Mapping[str, Any]) -> int:
    if selection.flat is not None:
        return selection.flat
    cost = 0
    for compiled in selection.fields:
        value = data.get(compiled.key)
        if value is None:
            continue
        if compiled.size is None:
            cost += _actual_item(compiled, value, variables)
        elif isinstance(value, list):
            if compiled.item_flat is not None:
                cost += compiled.item_flat * sum(1 for item in value if item is not None)
            else:
                cost += sum(
                    _actual_item(compiled, item, variables) for item in value if item is not None
                )
    for spread in selection.spreads:
        cost += _actual(spread, data, variables)
    if selection.variants:
        cost += max(_actual(v, data, variables) for v in selection.variants.values())
    return cost


def _actual_item(compiled: _Field, value: Any, variables: Mapping[str, Any]) -> int:
    if compiled.item_flat is not None:
        return compiled.item_flat
    weight = compiled.weight_with(variables)
    if compiled.selection is None or not isinstance(value, Mapping):
        return weight
    return weight + _actual(compiled.selection, value, variables)
