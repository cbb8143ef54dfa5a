"""Cache policy from the hints table: max-age and scope of an operation's selection."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema, build_schema

from schema import Executor, create_schema
from schema.cache_policy import (
    FIELD_HINTS,
    NO_STORE,
    STRUCTURAL,
    TYPE_HINTS,
    CachePolicies,
    CachePolicy,
)
from schema.entities import Scope
from schema.global_id import to_global_id


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return create_schema()._schema


def policy_of(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    policies: CachePolicies | None = None,
) -> CachePolicy:
    executor = Executor(schema)
    document = executor.parse(query)
    executor.validate(document)
    operation = document.operation(None)
    coerced = executor.check_variables(operation, variables)
    return (policies or CachePolicies(schema)).policy(document, operation, coerced)


def test_every_object_type_has_a_hint(graphql_schema: GraphQLSchema) -> None:
    objects = {
        name
        for name, type_ in graphql_schema.type_map.items()
        if isinstance(type_, GraphQLObjectType) and not name.startswith("__")
    } - {"Mutation"}
    wrappers = {n for n in objects if n.endswith(("Connection", "Edge"))}

    assert objects - wrappers - STRUCTURAL == set(TYPE_HINTS)
    assert {n.removesuffix("Connection").removesuffix("Edge") for n in wrappers} <= set(TYPE_HINTS)
    for type_name, field_name in FIELD_HINTS:
        assert field_name in graphql_schema.type_map[type_name].fields  # type: ignore[union-attr]


def test_the_hints_of_the_issue() -> None:
    assert TYPE_HINTS["Category"].max_age == 3600
    assert TYPE_HINTS["Product"].max_age == 300
    assert TYPE_HINTS["Review"].max_age == 60
    assert TYPE_HINTS["User"].max_age == 300
    assert TYPE_HINTS["Order"].scope is Scope.PRIVATE
    assert TYPE_HINTS["OrderItem"].scope is Scope.PRIVATE
    for field in ("email", "role", "orders", "orderCount"):
        assert FIELD_HINTS["User", field].scope is Scope.PRIVATE
    assert FIELD_HINTS["Query", "viewer"].scope is Scope.PRIVATE


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ categories { name } }", CachePolicy(3600)),
        ("{ categories { name products { nodes { name } } } }", CachePolicy(300)),
        ("{ products { totalCount } }", CachePolicy(300)),
        (
            "{ products { nodes { name reviews { nodes { body author { name } } } } } }",
            CachePolicy(60),
        ),
        ('{ user(id: "VXNlcjox") { name } }', CachePolicy(300)),
        ('{ user(id: "VXNlcjox") { name reviews { totalCount } } }', CachePolicy(60)),
        ('{ user(id: "VXNlcjox") { name email } }', CachePolicy(300, private=True)),
        ('{ user(id: "VXNlcjox") { orderCount } }', CachePolicy(300, private=True)),
        ("{ viewer { name } }", CachePolicy(300, private=True)),
        ("{ orders { nodes { totalCents } } }", CachePolicy(60, private=True)),
        ("{ users { nodes { name } } }", CachePolicy(300, private=True)),
        # Fragments count like the fields they hold.
        (
            "{ categories { ...F } } fragment F on Category { products { nodes { id } } }",
            CachePolicy(300),
        ),
        ("{ categories { ... on Category { name } } }", CachePolicy(3600)),
        # Not cacheable: nothing to bound it, introspection, mutations.
        ("{ __typename }", NO_STORE),
        ("{ __schema { queryType { name } } }", NO_STORE),
        ('{ __type(name: "Product") { name } }', NO_STORE),
        ('mutation { cancelOrder(id: "T3JkZXI6MQ") { id } }', NO_STORE),
    ],
)
def test_policy_of_a_selection(
    graphql_schema: GraphQLSchema, query: str, expected: CachePolicy
) -> None:
    assert policy_of(graphql_schema, query) == expected


def test_node_takes_the_hint_of_the_type_in_its_id(graphql_schema: GraphQLSchema) -> None:
    query = "query($id: ID!) { node(id: $id) { id } }"

    assert policy_of(graphql_schema, query, {"id": to_global_id("Category", 1)}) == CachePolicy(
        3600
    )
    assert policy_of(graphql_schema, query, {"id": to_global_id("Order", 1)}) == CachePolicy(
        60, private=True
    )
    assert policy_of(graphql_schema, query, {"id": "not an id"}) == NO_STORE


def test_nodes_take_the_most_restrictive_of_their_ids(graphql_schema: GraphQLSchema) -> None:
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    public = [to_global_id("Category", 1), to_global_id("Review", 2)]

    assert policy_of(graphql_schema, query, {"ids": public}) == CachePolicy(60)
    assert policy_of(
        graphql_schema, query, {"ids": [*public, to_global_id("Order", 3)]}
    ) == CachePolicy(60, private=True)


@pytest.mark.parametrize(
    ("filter_", "private"),
    [
        (None, False),
        ({}, False),
        ({"active": True}, False),
        ({"active": False}, True),
        ({"active": None}, True),
    ],
)
def test_products_listing_inactive_ones_is_private(
    graphql_schema: GraphQLSchema, filter_: dict[str, Any] | None, private: bool
) -> None:
    query = "query($f: ProductFilter) { products(filter: $f) { nodes { name } } }"

    assert policy_of(graphql_schema, query, {"f": filter_}) == CachePolicy(300, private=private)


def test_an_inline_literal_argument_counts_too(graphql_schema: GraphQLSchema) -> None:
    query = "{ products(filter: {active: false}) { totalCount } }"

    assert policy_of(graphql_schema, query) == CachePolicy(300, private=True)


def test_an_abstract_field_takes_the_most_restrictive_of_its_types() -> None:
    schema = build_schema(
        """
        interface Thing { id: ID! }
        type Product implements Thing { id: ID! }
        type Order implements Thing { id: ID! }
        type Query { thing: Thing, product: Product }
        """
    )

    assert policy_of(schema, "{ thing { id } }") == CachePolicy(60, private=True)
    assert policy_of(schema, "{ product { id } }") == CachePolicy(300)


def test_a_type_missing_from_the_table_is_not_cacheable() -> None:
    schema = build_schema("type Gadget { id: ID! } type Query { gadget: Gadget }")

    assert policy_of(schema, "{ gadget { id } }") == NO_STORE


def test_plans_are_cached_per_document(graphql_schema: GraphQLSchema) -> None:
    # Plans live in their document's entry of the executor's (bounded) document cache.
    policies = CachePolicies(graphql_schema)
    executor = Executor(graphql_schema, cache_size=1)
    first = executor.parse("{ categories { name } }")
    second = executor.parse("{ products { totalCount } }")
    for document in (first, first, second):
        executor.validate(document)
        policies.policy(document, document.operation(None), {})

    assert list(first.plans) == [(policies, None)]
    assert list(second.plans) == [(policies, None)]
    assert executor.parse("{ products { totalCount } }") is second
    assert executor.parse("{ categories { name } }") is not first  # evicted with its plan
