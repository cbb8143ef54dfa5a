"""GraphQL documents drawn from the served schema, for the property test.

hypothesis-graphql builds the selections; the scalars are ours so the values
reach past parsing into the resolvers: IDs are mostly real global IDs of the
seeded rows (server/cli/seed.py, scale `small`), ints sit on the validation
boundaries, strings include cursors, SQL wildcards and control characters,
DateTimes are ISO strings near the edges of the calendar. Root fields of up to
three generated queries are merged under aliases (siblings that share loaders,
one of which may fail), and half the documents pass their arguments as
variables (variable coercion and the cache key) instead of literals.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import graphql
from hypothesis import strategies as st
from hypothesis_graphql import nodes, strategies
from hypothesis_graphql._strategies import strategy as _internals
from hypothesis_graphql.strategies import Mode

from schema.global_id import to_global_id
from server.cli.seed import SCALES

Document = tuple[str, dict[str, Any] | None]

# hypothesis-graphql 0.13.5 builds a fresh `@composite` for a field's arguments on
# every draw, and hypothesis inspects each one's source: a quarter of the run's
# time. The schema never changes, so one strategy per argument map will do.
_internals.GraphQLStrategy.list_of_arguments = _internals.instance_cache(id)(  # type: ignore[method-assign]
    _internals.GraphQLStrategy.list_of_arguments
)

_SMALL = SCALES["small"]
# Existing ids of each node type in the `small` seed, plus a few that do not exist.
ID_RANGES = {
    "User": _SMALL.users,
    "Category": _SMALL.categories,
    "Product": _SMALL.products,
    "Order": _SMALL.orders,
    "Review": _SMALL.reviews,
    "OrderItem": _SMALL.orders,
}
INT_EDGES = (0, 1, -1, 2, 5, 10, 20, 99, 100, 101, 1000, 1001, 5000, 5001)
INT_EXTREMES = (2**31 - 1, -(2**31), 2**31, 2**53, 2**63 - 1, 2**63, -(2**63), 2**64)
# Deeper than Python's recursion limit: JSON decoders and encoders give up here.
DEEP = 2000


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def global_ids() -> st.SearchStrategy[str]:
    # Mostly the first few rows (the admin is User 1, the customer User 2), so that
    # siblings often load the same row and share a loader future.
    real = st.sampled_from(sorted(ID_RANGES)).flatmap(
        lambda type_name: st.one_of(
            st.integers(1, 4), st.integers(1, ID_RANGES[type_name] + 2)
        ).map(lambda id_: to_global_id(type_name, id_))
    )
    forged = st.sampled_from(
        [
            _b64("Product:0"),
            _b64("Product:-1"),
            _b64(f"Product:{2**63}"),
            _b64("Product:1.5"),
            _b64("Product: 1"),
            _b64("Nope:1"),
            _b64("Product"),
            _b64(":1"),
            "Product:1",
            "1",
            "",
            "====",
            "%%%",
        ]
    )
    return st.one_of(real, real, forged, st.text(max_size=12))


def cursors() -> st.SearchStrategy[str]:
    """Cursors of the right shape with wrong or edge values, and junk."""
    values = st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
        st.integers(-(2**64), 2**64),
        st.text(max_size=10),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(), max_size=2),
    )
    sorts = st.sampled_from(["newest", "price_asc", "price_desc", "name", "other"])
    positions = st.tuples(
        sorts, values, st.one_of(st.integers(-(2**64), 2**64), st.text(max_size=3))
    )
    shaped = positions.map(lambda p: _b64(json.dumps(list(p))))
    junk = st.one_of(
        st.sampled_from(
            [
                _b64("[]"),
                _b64("{}"),
                _b64("null"),
                _b64('"x"'),
                _b64("[1,2,3,4]"),
                _b64("[" * DEEP + "]" * DEEP),
            ]
        ),
        st.binary(max_size=20).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    )
    return st.one_of(shaped, junk)


def strings() -> st.SearchStrategy[str]:
    texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24)
    words = st.sampled_from(
        ["", " ", "Chair", "chair", "SKU-0000001", "SKU-0000300", "%", "_", "%_%", "\\", "'", '"']
    )
    controls = st.tuples(
        st.sampled_from(["", "a", "Chair"]),
        st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\n", "\t", "\u2028"]),
        st.sampled_from(["", "b"]),
    ).map("".join)
    long = st.integers(99, 120).map(lambda n: "a" * n)
    # Control characters twice: the budget is a few hundred examples.
    return st.one_of(texts, words, controls, controls, cursors(), global_ids(), long)


def datetimes() -> st.SearchStrategy[str]:
    zones = st.one_of(
        st.none(),
        st.just(UTC),
        st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m))),
    )
    valid = st.datetimes(timezones=zones).map(datetime.isoformat)
    junk = st.sampled_from(
        ["", "2026", "2026-01-01", "2026-13-01T00:00:00", "2026-01-01T25:00:00", "yesterday", "0"]
    )
    return st.one_of(valid, junk, st.text(max_size=12))


def custom_scalars() -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    return {
        "ID": global_ids().map(nodes.String),
        "Int": st.one_of(
            st.sampled_from(INT_EDGES), st.sampled_from(INT_EXTREMES), st.integers(-3, 120)
        ).map(nodes.Int),
        "String": strings().map(nodes.String),
        "DateTime": datetimes().map(nodes.String),
    }


def merge_with_aliases(documents: list[str]) -> str:
    """One query whose root fields are those of `documents`, each under its own alias."""
    selections: list[graphql.SelectionNode] = []
    for i, document in enumerate(documents):
        operation = graphql.parse(document).definitions[0]
        assert isinstance(operation, graphql.OperationDefinitionNode)
        for j, selection in enumerate(operation.selection_set.selections):
            assert isinstance(selection, graphql.FieldNode)
            alias = graphql.NameNode(value=f"q{i}_{j}_{selection.name.value}")
            selections.append(
                graphql.FieldNode(
                    alias=alias,
                    name=selection.name,
                    arguments=selection.arguments,
                    directives=selection.directives,
                    selection_set=selection.selection_set,
                )
            )
    merged = graphql.OperationDefinitionNode(
        operation=graphql.OperationType.QUERY,
        selection_set=graphql.SelectionSetNode(selections=tuple(selections)),
        variable_definitions=(),
        directives=(),
    )
    return graphql.print_ast(graphql.DocumentNode(definitions=(merged,)))


class _LiftArguments(graphql.Visitor):
    """Replaces every literal argument by a variable of the argument's declared type."""

    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.definitions: list[graphql.VariableDefinitionNode] = []
        self.values: dict[str, Any] = {}

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> graphql.ArgumentNode | None:
        argument = self.type_info.get_argument()
        if argument is None:
            return None
        name = f"v{len(self.values)}"
        self.values[name] = graphql.value_from_ast_untyped(node.value)
        variable = graphql.VariableNode(name=graphql.NameNode(value=name))
        self.definitions.append(
            graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(argument.type)), directives=()
            )
        )
        return graphql.ArgumentNode(name=node.name, value=variable)


def with_variables(schema: graphql.GraphQLSchema, document: str) -> Document:
    """`document` with its argument values sent as JSON variables instead of literals."""
    type_info = graphql.TypeInfo(schema)
    lift = _LiftArguments(type_info)
    tree = graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(type_info, lift))
    operation = tree.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    lifted = graphql.OperationDefinitionNode(
        operation=operation.operation,
        selection_set=operation.selection_set,
        variable_definitions=tuple(lift.definitions),
        directives=(),
    )
    return graphql.print_ast(graphql.DocumentNode(definitions=(lifted,))), lift.values


def documents(schema: graphql.GraphQLSchema) -> st.SearchStrategy[Document]:
    """Valid queries (merged, literal or with variables) and, sometimes, invalid ones."""
    scalars = custom_scalars()
    assert schema.query_type is not None
    # One strategy per root field, drawn uniformly: left to itself hypothesis-graphql
    # favours the fields with the largest types (node, nodes) and rarely picks `order`.
    # `products` has three shares: most of the arguments (filter, sort) are there.
    names = [*schema.query_type.fields, "products", "products"]
    roots = st.one_of(
        *(strategies.queries(schema, fields=[name], custom_scalars=scalars) for name in names)
    )
    valid = st.lists(roots, min_size=1, max_size=4)
    merged = valid.map(merge_with_aliases)
    invalid = strategies.queries(schema, custom_scalars=scalars, mode=Mode.NEGATIVE)
    return st.one_of(
        merged.map(lambda query: (query, None)),
        merged.map(lambda query: with_variables(schema, query)),
        st.tuples(merged.map(lambda query: with_variables(schema, query)), unused_values()).map(
            lambda pair: (pair[0][0], {**(pair[0][1] or {}), "unused": pair[1]})
        ),
        invalid.map(lambda query: (query, None)),
    )


def unused_values() -> st.SearchStrategy[Any]:
    """A variable the document does not declare: any JSON, sometimes nested very deep."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=3), children, max_size=3)
        ),
        max_leaves=8,
    )
    # 300 levels: past orjson's limit of 254, short of the test client's own recursion limit.
    return st.one_of(json_values, st.sampled_from([10, 300]).map(_nested))


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value
