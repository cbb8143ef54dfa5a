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
from dataclasses import dataclass
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

from schema.cost_plan import (
    CostPlan,
    Extra,
    PlannedField,
    Selection,
    Size,
    finish_field,
)
from schema.entities import ENTITIES
from schema.errors import QUERY_TOO_COMPLEX
from schema.executor import Document, RequestError

OBJECT_WEIGHT = 1
LEAF_WEIGHT = 0
DEFAULT_LIST_SIZE = 10


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
class Price:
    plan: CostPlan
    requested: int


class CostAnalysis:
    """Prices operations against `schema`; each operation's plan is compiled once and
    kept in its document's entry (`Document.plans`), keyed by this analysis, and
    evicted with it (the executor's document cache bounds the plans).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        max_cost: int = 1000,
        mutation_cost: int = 10,
        costs: Mapping[str, Cost] = COSTS,
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
        self.compiled: dict[tuple[str, Size | None], Selection] = {}

    def operation(self, operation: OperationDefinitionNode) -> Selection:
        root = self.schema.get_root_type(operation.operation)
        assert root is not None, "validated operations have a root type"
        return self.selection(operation.selection_set, root)

    def selection(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        *,
        page: Size | None = None,
    ) -> Selection:
        selection = Selection()
        self.collect(selection_set, parent, selection, page)
        for variant in selection.variants.values():
            variant.finish()
        return selection.finish()

    def collect(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        into: Selection,
        page: Size | None,
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
        self, into: Selection, parent: GraphQLNamedType, target: GraphQLNamedType
    ) -> Selection:
        """Where a fragment on `target` counts: with its parent, or as one of its variants."""
        if is_abstract_type(parent) and isinstance(target, GraphQLObjectType):
            return into.variants.setdefault(target.name, Selection())
        return into

    def fragment(
        self, definition: FragmentDefinitionNode, target: GraphQLNamedType, page: Size | None
    ) -> Selection:
        # A fragment on a connection type is sized by the connection it is spread in.
        key = (definition.name.value, page)
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = self.selection(definition.selection_set, target, page=page)
            self.compiled[key] = compiled
        return compiled

    def field(
        self, node: FieldNode, parent: GraphQLNamedType, page: Size | None
    ) -> PlannedField | None:
        name = node.name.value
        key = node.alias.value if node.alias else name
        entry = self.costs.get(f"{parent.name}.{name}", _NO_ENTRY)
        if name.startswith("__"):
            weight = entry.weight or 0
            return finish_field(PlannedField(key, weight, None, None)) if weight else None
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
        extras: list[Extra] = []
        for path, extra in self.argument_costs.get(f"{parent.name}.{name}", ()):
            charged = _argument_weight(node, definition, path, extra)
            if isinstance(charged, Extra):
                extras.append(charged)
            else:
                weight += charged
        if weight == 0 and not extras and (selection is None or selection.static == 0):
            return None
        size = self.size(node, definition, entry, page)
        return finish_field(PlannedField(key, weight, size, selection, tuple(extras)))

    def size(
        self, node: FieldNode, definition: GraphQLField, entry: Cost, page: Size | None
    ) -> Size | None:
        if not is_list_type(get_nullable_type(definition.type)):
            return None
        if page is not None and node.name.value in ("edges", "nodes"):
            return page
        if entry.size_argument is not None:
            return _argument(node, definition, entry.size_argument, length=True)
        return Size(DEFAULT_LIST_SIZE if entry.size is None else entry.size)

    def page(self, node: FieldNode, definition: GraphQLField) -> Size | None:
        """A connection's page size (its `first`), None for any other field."""
        connection = get_named_type(definition.type)
        if "first" not in definition.args or not isinstance(connection, GraphQLObjectType):
            return None
        if "edges" not in connection.fields or "nodes" not in connection.fields:
            return None
        return _argument(node, definition, "first")


def _argument(
    node: FieldNode, definition: GraphQLField, name: str, *, length: bool = False
) -> Size:
    """The size an argument gives: its literal, its variable, or else its default."""
    default = _default(definition.args[name])
    fallback = default if isinstance(default, int) and not length else DEFAULT_LIST_SIZE
    argument = next((a for a in node.arguments or () if a.name.value == name), None)
    value = None if argument is None else argument.value
    if value is None or isinstance(value, NullValueNode):
        return Size(fallback)
    if isinstance(value, VariableNode):
        return Size(fallback, value.name.value, length)
    if length:  # a single value stands for a list of one
        return Size(len(value.values) if isinstance(value, ListValueNode) else 1)
    if isinstance(value, IntValueNode):
        return Size(max(0, int(value.value)))
    return Size(fallback)


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
) -> int | Extra:
    """`weight` when the argument at `path` is given as a literal, 0 when it is not,
    an `Extra` when a variable decides."""
    argument = next((a for a in node.arguments or () if a.name.value == path[0]), None)
    if argument is None or path[0] not in definition.args:
        return 0
    value: ValueNode | None = argument.value
    input_type: GraphQLInputType = definition.args[path[0]].type
    for depth, name in enumerate(path[1:], start=1):
        if isinstance(value, VariableNode):
            return Extra(weight, value.name.value, _out_names(input_type, path[depth:]))
        if not isinstance(value, ObjectValueNode):
            return 0
        value = next((f.value for f in value.fields if f.name.value == name), None)
        named = get_named_type(input_type)
        if not isinstance(named, GraphQLInputObjectType) or name not in named.fields:
            return 0
        input_type = named.fields[name].type
    if isinstance(value, VariableNode):
        return Extra(weight, value.name.value, ())
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


def _default(argument: GraphQLArgument) -> Any:
    """An argument's default: a coerced value (Strawberry) or an SDL literal (build_schema)."""
    if argument.default_value is not Undefined:
        return argument.default_value
    default = argument.default
    if default is not None and isinstance(default.literal, IntValueNode):
        return int(default.literal.value)
    return None if default is None else default.value
