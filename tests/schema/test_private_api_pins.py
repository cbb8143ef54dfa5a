"""Pins of the library internals our shortcuts lean on, one named test per shortcut.

Each shortcut skips a Strawberry or graphql-core layer for speed (schema/lean.py,
schema/prefetch.py) or reaches the graphql-core schema under Strawberry's
(`create_schema()._schema`). None of them is a public API, so an upgrade could
quietly break one: things would still answer, only slower, or not at all. These
tests state what each relies on, so such an upgrade fails here, by name.
"""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import strawberry
from aiodataloader import DataLoader
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    execute,
    graphql_sync,
    parse,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from loaders import Loaders
from loaders.container import loaded
from loaders.records import CategoryRecord, OrderItemRecord, ProductRecord, UserRecord
from schema import create_schema
from schema.lean import _LEAN, install_lean_resolvers, is_lean_resolver
from schema.mutation import Mutation
from schema.prefetch import RELATIONS, prefetch
from schema.query import Query
from tests.conftest import Api, Database
from tests.factories import Factory


def _lean_fields_by_definition(schema: strawberry.Schema) -> set[tuple[str, str]]:
    """(type, GraphQL field) of every `@lean` resolver, found through Strawberry's public
    definitions, not through the back-reference lean.py uses."""
    found = set()
    for name in schema._schema.type_map:
        definition = schema.get_type_by_name(name)
        if not isinstance(definition, StrawberryObjectDefinition) or definition.is_interface:
            continue  # an interface's fields resolve on the types implementing it
        for field in definition.fields:
            resolver = field.base_resolver
            if resolver is not None and getattr(resolver.wrapped_func, _LEAN, False):
                found.add((name, schema.config.name_converter.get_graphql_name(field)))
    return found


def _lean_resolver(schema: GraphQLSchema, type_name: str, field_name: str) -> Any:
    graphql_type = schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    return graphql_type.fields[field_name].resolve


def test_strawberry_schema_private_schema_is_the_graphql_core_schema() -> None:
    """`create_schema()._schema` feeds the executor, cost analysis, caches and CLI.

    Breaks when Strawberry renames `Schema._schema`, builds it lazily, or stops
    compiling to a graphql-core GraphQLSchema with our root types.
    """
    served = create_schema()._schema

    assert isinstance(served, GraphQLSchema)
    assert served.query_type is not None
    assert served.query_type.name == "Query"
    assert served.mutation_type is not None
    assert served.mutation_type.name == "Mutation"
    assert served.subscription_type is None
    assert {"Node", "Product", "Order", "OrderItem", "User"} <= set(served.type_map)


def test_converter_back_reference_links_graphql_fields_to_strawberry_fields() -> None:
    """lean.py finds each `@lean` function from the compiled field through the converter's
    back-reference (`extensions[GraphQLCoreConverter.DEFINITION_BACKREF]`).

    Breaks when Strawberry renames DEFINITION_BACKREF, stops storing the StrawberryField
    there, or moves the user's function off `base_resolver.wrapped_func`: lean.py would
    then rewire nothing, silently, and every relation field would be ~8 µs slower.
    """
    schema = strawberry.Schema(query=Query, mutation=Mutation)
    order = schema._schema.type_map["Order"]
    assert isinstance(order, GraphQLObjectType)

    field = (order.fields["customer"].extensions or {})[GraphQLCoreConverter.DEFINITION_BACKREF]

    assert isinstance(field, StrawberryField)
    assert field.base_resolver is not None
    assert getattr(field.base_resolver.wrapped_func, _LEAN, False)
    expected = _lean_fields_by_definition(schema)
    assert ("Order", "customer") in expected
    assert install_lean_resolvers(schema) == len(expected)


async def test_lean_fields_resolve_through_our_plain_function_after_create_schema() -> None:
    """After create_schema every `@lean` field's graphql-core `resolve` is lean.py's
    direct call, not Strawberry's wrapper, and calls the function with (root, root, info).

    Breaks when Strawberry reinstalls or wraps resolvers after schema construction, or
    when the fields graphql-core reads are copies of the ones we rewire.
    """
    strawberry_schema = create_schema()
    served = strawberry_schema._schema
    lean_fields = _lean_fields_by_definition(strawberry_schema)
    rewired = {
        (type_name, field_name)
        for type_name, graphql_type in served.type_map.items()
        if isinstance(graphql_type, GraphQLObjectType)
        for field_name, field in graphql_type.fields.items()
        if field.resolve is not None and is_lean_resolver(field.resolve)
    }

    assert rewired == lean_fields
    # Every relation prefetch loads is answered lean: its value, ready, with no wrapper.
    assert set(RELATIONS) <= rewired
    record = SimpleNamespace(user_id=7)
    seen: list[Any] = []

    class Loader:
        def load(self, key: int) -> Any:
            seen.append(key)
            return _done(f"user {key}")

    info = SimpleNamespace(context=SimpleNamespace(loaders=SimpleNamespace(user_by_id=Loader())))
    assert _lean_resolver(served, "Order", "customer")(record, info) == "user 7"
    assert seen == [7]


def test_graphql_core_calls_the_resolve_set_after_the_schema_is_built() -> None:
    """lean.py assigns `GraphQLField.resolve` on a built schema; graphql-core must read it
    at execution time and call it as `resolve(source, info)` for a field without arguments.

    Breaks when graphql-core compiles or caches resolvers when the schema is built, or
    changes the resolver calling convention.
    """
    field = GraphQLField(GraphQLString)
    schema = GraphQLSchema(GraphQLObjectType("Query", {"greeting": field}))
    calls: list[tuple[Any, ...]] = []

    def resolve(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "rewired"

    field.resolve = resolve
    result = graphql_sync(schema, "{ greeting }", root_value="root")

    assert result.data == {"greeting": "rewired"}
    ((args, kwargs),) = calls
    assert args[0] == "root"
    assert isinstance(args[1], GraphQLResolveInfo)
    assert kwargs == {}


def test_strawberry_info_carries_graphql_core_info_as_raw_info() -> None:
    """prefetch() reads the field nodes and fragments off `info._raw_info`.

    Breaks when Strawberry renames `Info._raw_info` or stops passing graphql-core's info
    through: prefetch would fail on every listing with relations below it.
    """
    captured: list[Any] = []

    @strawberry.type
    class Probe:
        @strawberry.field
        def items(self, info: strawberry.Info) -> list[str]:
            captured.append(info)
            return []

    schema = strawberry.Schema(query=Probe)
    result = schema.execute_sync("{ ...F } fragment F on Probe { items }")

    assert result.errors is None
    (info,) = captured
    raw = info._raw_info
    # Strawberry's own NamedTuple twin of GraphQLResolveInfo: the fields prefetch reads.
    assert [node.name.value for node in raw.field_nodes] == ["items"]
    assert set(raw.fragments) == {"F"}
    assert raw.context is info.context


async def test_dataloader_answers_a_loaded_key_with_a_done_future() -> None:
    """`loaders.loaded` returns a value, not a future, for a key a batch already loaded:
    aiodataloader hands back its cached future, already done.

    Breaks when aiodataloader stops caching futures per key or returns a fresh
    pending one: every relation field would go back to an awaitable (~700 tasks on
    the order dashboard).
    """
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[str]:
        batches.append(list(keys))
        return [f"value {key}" for key in keys]

    loader: DataLoader[int, str] = DataLoader(batch)
    assert inspect.isawaitable(loaded(loader, 1))  # not loaded yet: a future

    await loader.load_many([2, 3])

    assert loaded(loader, 2) == "value 2"
    assert loaded(loader, 3) == "value 3"
    assert batches == [[1, 2, 3]] or batches == [[1], [2, 3]]


async def test_relation_fields_resolve_synchronously_after_prefetch(
    db: Database, factory: Factory
) -> None:
    """After prefetch(), the served relation resolvers return values, not awaitables.

    Breaks when prefetch's walk of graphql-core's field nodes and fragments misses a
    selection, when a RELATIONS row names the wrong loader or key, or when a loader
    stops answering loaded keys synchronously.
    """
    category = await factory.category(name="Tea")
    product = await factory.product(name="Sencha", category_id=category)
    order_id = await factory.order(items=[(product, 2, 300)])
    served = create_schema()._schema
    document = parse(
        "query { order(id: 1) { ...O } }"
        " fragment O on Order { customer { name } items { product { category { name } } } }"
    )
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    order_node = operation.selection_set.selections[0]
    assert isinstance(order_node, FieldNode)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def resolve(type_name: str, field_name: str, record: Any, loaders: Loaders) -> Any:
        info = SimpleNamespace(context=SimpleNamespace(loaders=loaders))
        return _lean_resolver(served, type_name, field_name)(record, info)

    # Without prefetch a relation answers with a future: the test can tell the two apart.
    cold = Loaders(sessionmaker=db.sessionmaker, dialect=db.engine.dialect.name)
    cold_order = await cold.order_by_id.load(order_id)
    assert inspect.isawaitable(resolve("Order", "customer", cold_order, cold))

    loaders = Loaders(sessionmaker=db.sessionmaker, dialect=db.engine.dialect.name)
    order = await loaders.order_by_id.load(order_id)
    info = SimpleNamespace(
        field_nodes=[order_node], fragments=fragments, context=SimpleNamespace(loaders=loaders)
    )
    await prefetch(info, [order], "Order")

    customer = resolve("Order", "customer", order, loaders)
    items = resolve("Order", "items", order, loaders)
    assert isinstance(customer, UserRecord)
    assert customer.id == order.user_id
    assert isinstance(items, list)
    assert len(items) == 1
    (item,) = items
    assert isinstance(item, OrderItemRecord)
    assert item.quantity == 2
    item_product = resolve("OrderItem", "product", item, loaders)
    assert isinstance(item_product, ProductRecord)
    assert item_product.name == "Sencha"
    item_category = resolve("Product", "category", item_product, loaders)
    assert isinstance(item_category, CategoryRecord)
    assert item_category.name == "Tea"


def test_graphql_core_completes_plain_values_without_awaiting() -> None:
    """prefetch pays off because graphql-core completes plain values synchronously: a
    query whose resolvers all return values executes without an awaitable.

    Breaks when graphql-core turns every field completion into an awaitable (then
    prefetching would save no tasks and the dashboard figures would fall back).
    """
    item = GraphQLObjectType("Item", {"name": GraphQLField(GraphQLString)})
    query = GraphQLObjectType(
        "Query",
        {
            "items": GraphQLField(
                GraphQLList(item), resolve=lambda *_: [{"name": "a"}, {"name": "b"}]
            )
        },
    )

    result = execute(GraphQLSchema(query), parse("{ items { name } }"))

    assert isinstance(result, ExecutionResult)
    assert result.data == {"items": [{"name": "a"}, {"name": "b"}]}


async def test_lean_relation_fields_answer_right_over_http(api: Api, factory: Factory) -> None:
    """The rewired fields give the same values as before, through the real endpoint.

    Breaks when lean.py's direct call hands the function something other than the
    parent record and an info with `.context` (e.g. a changed `Parent` convention).
    """
    admin = await api.token("admin@example.com", role="admin")
    parent = await factory.category(name="Drinks")
    category = await factory.category(name="Tea", parent_id=parent)
    product = await factory.product(name="Sencha", category_id=category)
    buyer = await factory.user(name="Ada")
    order_id = await factory.order(user_id=buyer, items=[(product, 2, 300)])
    await factory.review(product_id=product, user_id=buyer, rating=5)
    from schema.global_id import to_global_id

    data = await api.data(
        """query($id: ID!) { order(id: $id) {
          customer { name }
          items { quantity order { id } product {
            name averageRating reviewCount category { name parent { name children { name } } }
            reviews(first: 5) { nodes { author { name } product { name } } }
          } }
        } }""",
        {"id": to_global_id("Order", order_id)},
        token=admin,
    )

    order = data["order"]
    assert order["customer"] == {"name": "Ada"}
    (item,) = order["items"]
    assert item["quantity"] == 2
    assert item["order"] == {"id": to_global_id("Order", order_id)}
    assert item["product"]["name"] == "Sencha"
    assert (item["product"]["averageRating"], item["product"]["reviewCount"]) == (5.0, 1)
    assert item["product"]["category"] == {
        "name": "Tea",
        "parent": {"name": "Drinks", "children": [{"name": "Tea"}]},
    }
    assert item["product"]["reviews"]["nodes"] == [
        {"author": {"name": "Ada"}, "product": {"name": "Sencha"}}
    ]


def _done(value: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
