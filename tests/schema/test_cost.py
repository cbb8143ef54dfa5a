"""Cost analysis: the static rules, variables, fragments, mutations and the actual cost."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema, get_named_type, is_leaf_type

from schema import create_schema
from schema.cost import COSTS as COSTS_OF_THE_API
from schema.cost import Cost, CostAnalysis, QueryTooComplex
from schema.executor import Executor

SCHEMA = build_schema(
    """
    interface Node { id: ID! }
    type Query {
      shop: Shop
      items(first: Int = 5, after: String): ItemConnection!
      tags: [Tag!]!
      many(ids: [ID!]!): [Node]!
    }
    type Mutation { buy(id: ID!): Item!, forget(id: ID!): Boolean! }
    type Shop { name: String, owner: Tag }
    type Tag implements Node { id: ID!, label: String }
    type Item implements Node {
      id: ID!
      price: Int
      kind: Kind
      tags: [Tag!]!
      similar(first: Int = 2): ItemConnection!
    }
    enum Kind { A B }
    type PageInfo { hasNextPage: Boolean! }
    type ItemEdge { cursor: String!, node: Item! }
    type ItemConnection {
      edges: [ItemEdge!]!
      nodes: [Item!]!
      pageInfo: PageInfo!
      totalCount: Int!
    }
    """
)
COSTS = {
    "PageInfo": Cost(weight=0),
    "ItemConnection.totalCount": Cost(weight=1),
    "Item.tags": Cost(size=3),
    "Query.tags": Cost(size=4),
    "Query.many": Cost(size_argument="ids"),
}


def price(
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    schema: Any = SCHEMA,
    analysis: CostAnalysis | None = None,
) -> int:
    executor = Executor(schema)
    document = executor.parse(query)
    executor.validate(document)
    operation = document.operation(None)
    coerced = executor.check_variables(operation, variables)
    analysis = analysis or CostAnalysis(schema, costs=COSTS, max_cost=10**40)
    return analysis.price(document, operation, coerced).requested


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ __typename }", 1),  # no operation is free
        ("{ shop { name } }", 1),  # object 1, scalar 0
        ("{ shop { owner { label } } }", 2),
        ("{ items { totalCount } }", 2),  # connection 1, totalCount weight 1
        ("{ items { pageInfo { hasNextPage } } }", 1),  # PageInfo weighs 0
        ("{ items { nodes { id kind } } }", 1 + 5),  # default `first`
        ("{ items(first: 7) { edges { cursor node { id } } } }", 1 + 7),  # edges cost 0
        ("{ items(first: 7) { edges { node { id } } nodes { id } } }", 1 + 14),
        ("{ items(first: 0) { nodes { id } } }", 1),
        ("{ items(first: null) { nodes { id } } }", 1 + 5),
        ("{ items(first: 3) { nodes { tags { id } } } }", 1 + 3 * (1 + 3)),
        ("{ items(first: 3) { nodes { similar { nodes { id } } } } }", 1 + 3 * (1 + 1 + 2)),
        ("{ tags { label } }", 4),
        ('{ many(ids: ["a", "b", "c"]) { id } }', 3),
        ('{ many(ids: "a") { id } }', 1),
        ("{ a: shop { name } b: shop { name } }", 2),
        ("{ __schema { types { name } } }", 1),  # no table entry: the floor
    ],
)
def test_static_rules(query: str, cost: int) -> None:
    assert price(query) == cost


def test_variables_are_priced_after_coercion() -> None:
    query = "query($n: Int) { items(first: $n) { nodes { id } } }"
    assert price(query, {"n": 40}) == 41
    assert price(query, {"n": 100_000}) == 100_001
    assert price(query, {}) == 6  # absent: the argument's default
    assert price(query, {"n": None}) == 6  # null: the argument's default
    assert price("query($n: Int = 9) { items(first: $n) { nodes { id } } }", {}) == 10
    ids = "query($ids: [ID!]!) { many(ids: $ids) { id } }"
    assert price(ids, {"ids": ["a"] * 12}) == 12
    assert price(ids, {"ids": "a"}) == 1  # a single value is coerced to a list of one


def test_fragments_count_every_spread_and_are_sized_by_their_connection() -> None:
    fragment = "fragment F on ItemConnection { nodes { id } }"
    query = "query($n: Int) { a: items(first: 3) { ...F } b: items(first: $n) { ...F ...F } }"
    assert price(query + fragment, {"n": 10}) == (1 + 3) + (1 + 10 + 10)


def test_fragments_spreading_each_other_twice_are_priced_in_linear_time() -> None:
    levels = 80
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"query($n: Int) {{ ...F0 }} {fragments} "
    query += f"fragment F{levels} on Query {{ items(first: $n) {{ nodes {{ id }} }} }}"
    assert price(query, {"n": 1}) == 2**levels * 2


def test_fragments_on_concrete_types_of_an_interface_cost_the_dearest() -> None:
    query = (
        '{ many(ids: ["a", "b"]) { id '
        "... on Tag { label } "
        "... on Item { similar(first: 4) { nodes { id } } tags { id } } } }"
    )
    assert price(query) == 2 * (1 + (1 + 4) + 3)


def test_mutation_fields_cost_a_fixed_price_plus_their_selection() -> None:
    analysis = CostAnalysis(SCHEMA, costs=COSTS, mutation_cost=10)
    assert price('mutation { forget(id: "1") }', analysis=analysis) == 10
    assert price('mutation { buy(id: "1") { tags { id } } }', analysis=analysis) == 10 + 3
    spread = 'mutation { ...M } fragment M on Mutation { a: forget(id: "1") b: forget(id: "2") }'
    assert price(spread, analysis=analysis) == 20


def test_every_mutation_of_the_real_schema_costs_the_fixed_price() -> None:
    schema = create_schema()._schema
    assert schema.mutation_type is not None
    analysis = CostAnalysis(schema, mutation_cost=10)
    executor = Executor(schema)
    for name, field in schema.mutation_type.fields.items():
        assert analysis.mutation_cost == 10
        arguments = ", ".join(f"{arg}: ${arg}" for arg in field.args)
        variables = ", ".join(f"${arg}: {a.type}" for arg, a in field.args.items())
        selection = "" if is_leaf_type(get_named_type(field.type)) else "{ __typename }"
        query = f"mutation({variables}) {{ {name}({arguments}) {selection} }}"
        document = executor.parse(query)
        executor.validate(document)
        assert analysis.plan(document, document.operation(None)).requested({}) == 10, name


def test_over_the_maximum_is_query_too_complex() -> None:
    analysis = CostAnalysis(SCHEMA, costs=COSTS, max_cost=11)
    query = "query($n: Int) { items(first: $n) { nodes { id } } }"
    assert price(query, {"n": 10}, analysis=analysis) == 11
    with pytest.raises(QueryTooComplex) as raised:
        price(query, {"n": 11}, analysis=analysis)
    assert raised.value.code == "QUERY_TOO_COMPLEX"
    assert raised.value.errors[0].extensions == {
        "cost": {"requestedQueryCost": 12, "maximumQueryCost": 11}
    }


def test_plans_are_compiled_once_per_document_and_operation() -> None:
    executor = Executor(SCHEMA)
    analysis = CostAnalysis(SCHEMA, costs=COSTS)
    document = executor.parse(
        "query A { shop { name } } query B($n: Int) { items(first: $n) { totalCount } }"
    )
    executor.validate(document)
    a, b = document.operation("A"), document.operation("B")
    assert analysis.plan(document, a) is analysis.plan(document, a)
    assert analysis.plan(document, a) is not analysis.plan(document, b)
    again = executor.parse(
        "query A { shop { name } } query B($n: Int) { items(first: $n) { totalCount } }"
    )
    assert analysis.plan(again, a) is analysis.plan(document, a)  # same text, same hash


def _plan(query: str) -> Any:
    executor = Executor(SCHEMA)
    document = executor.parse(query)
    executor.validate(document)
    return CostAnalysis(SCHEMA, costs=COSTS).plan(document, document.operation(None))


def test_actual_cost_counts_what_was_resolved() -> None:
    plan = _plan("{ items(first: 10) { totalCount nodes { id tags { id } } } }")
    assert plan.requested({}) == 1 + 1 + 10 * (1 + 3)
    data = {
        "items": {
            "totalCount": 2,
            "nodes": [{"id": "1", "tags": [{"id": "t"}] * 5}, {"id": "2", "tags": []}],
        }
    }
    assert plan.actual(data) == 1 + 1 + (1 + 5) + (1 + 0)
    assert plan.actual({"items": None}) == 1  # the floor: no operation is free
    assert plan.actual(None) == 1


def test_actual_cost_under_aliases_fragments_and_interfaces() -> None:
    plan = _plan(
        "{ a: shop { owner { id } } b: shop { name } "
        '...Q many(ids: ["1", "2"]) { ... on Item { tags { id } } ... on Tag { label } } } '
        "fragment Q on Query { tags { id } }"
    )
    data = {
        "a": {"owner": None},
        "b": {"name": "x"},
        "tags": [{"id": "1"}],
        "many": [{"tags": [{"id": "1"}, {"id": "2"}]}, None],
    }
    # `a` counts its owner although it is null: below a single object nothing is
    # walked (lists are what make actual and requested differ, and they are walked).
    assert plan.actual(data) == (1 + 1) + 1 + 1 + (1 + 2)


SEARCH_WEIGHT = COSTS_OF_THE_API["Query.products(filter.search)"].weight or 0


@pytest.mark.parametrize(
    ("query", "variables", "extra"),
    [
        ('{ products(first: 1, filter: { search: "oak" }) { nodes { id } } }', None, 1),
        ('{ products(first: 1, filter: { search: "" }) { nodes { id } } }', None, 0),
        ("{ products(first: 1, filter: { search: null }) { nodes { id } } }", None, 0),
        ("{ products(first: 1, filter: { minPriceCents: 5 }) { nodes { id } } }", None, 0),
        ("{ products(first: 1) { nodes { id } } }", None, 0),
        (
            "query($s: String) { products(first: 1, filter: { search: $s }) { nodes { id } } }",
            {"s": "oak"},
            1,
        ),
        (
            "query($s: String) { products(first: 1, filter: { search: $s }) { nodes { id } } }",
            {},
            0,
        ),
        (
            "query($f: ProductFilter) { products(first: 1, filter: $f) { nodes { id } } }",
            {"f": {"search": "oak"}},
            1,
        ),
        (
            "query($f: ProductFilter) { products(first: 1, filter: $f) { nodes { id } } }",
            {"f": {"minPriceCents": 5}},
            0,
        ),
        (
            'query($f: ProductFilter = { search: "oak" }) '
            "{ products(first: 1, filter: $f) { nodes { id } } }",
            None,
            1,
        ),
        (
            '{ a: products(first: 1, filter: { search: "a" }) { nodes { id } } '
            'b: products(first: 1, filter: { search: "b" }) { nodes { id } } }',
            None,
            2,
        ),
    ],
)
def test_a_product_search_adds_its_weight_from_the_cost_table(
    query: str, variables: dict[str, Any] | None, extra: int
) -> None:
    schema = create_schema()._schema
    analysis = CostAnalysis(schema, max_cost=10**6)
    products = 1 + 1  # the connection and one node
    aliases = max(extra, 1)
    assert price(query, variables, schema=schema, analysis=analysis) == (
        aliases * products + extra * SEARCH_WEIGHT
    )


def test_the_actual_cost_of_a_search_keeps_its_weight() -> None:
    schema = create_schema()._schema
    executor = Executor(schema)
    query = "query($f: ProductFilter) { products(first: 5, filter: $f) { nodes { id } } }"
    document = executor.parse(query)
    executor.validate(document)
    operation = document.operation(None)
    analysis = CostAnalysis(schema)
    data = {"products": {"nodes": [{"id": "1"}]}}
    searched = analysis.price(document, operation, {"f": {"search": "oak"}})
    listed = analysis.price(document, operation, {"f": None})
    assert searched.requested == 1 + 5 + SEARCH_WEIGHT
    assert searched.plan.actual(data) == 1 + 1 + SEARCH_WEIGHT
    assert listed.requested == 1 + 5
    assert listed.plan.actual(data) == 1 + 1
