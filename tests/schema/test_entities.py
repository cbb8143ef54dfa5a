"""The entity vocabulary (schema/entities.py) against the code it describes."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema

import loaders.records
import schema.types
from loaders import Loaders
from loaders.records import OrderRecord, ProductRecord, UserRecord
from loaders.tags import entity_tag, list_tag
from models import Order
from resolvers.changes import Changes, announce
from resolvers.nodes import node
from resolvers.viewer import Viewer
from resolvers.visibility import Visibility
from schema import create_schema
from schema.cache_policy import TYPE_HINTS
from schema.cost import COSTS
from schema.entities import ENTITIES, ENTITY_OF_TYPE, TYPE_OF_RECORD, Entity, Scope
from schema.types.node import Node
from tests.conftest import Database
from tests.factories import Factory


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return create_schema()._schema


def _strawberry_types() -> list[type]:
    """Every Strawberry object type defined under schema/types/."""
    found = []
    for module_info in pkgutil.iter_modules(schema.types.__path__, "schema.types."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if hasattr(value, "__strawberry_definition__") and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_strawberry_type_implementing_node_has_a_row() -> None:
    implementing = {
        cls.__strawberry_definition__.name  # type: ignore[attr-defined]
        for cls in _strawberry_types()
        if issubclass(cls, Node) and cls is not Node
    }
    assert implementing, "no Node type found: the walk of schema/types/ is broken"
    node_rows = {entity.type_name for entity in ENTITIES if entity.node}
    assert implementing == node_rows


def test_every_row_names_a_type_of_the_schema(graphql_schema: GraphQLSchema) -> None:
    interface = graphql_schema.get_type("Node")
    for entity in ENTITIES:
        type_ = graphql_schema.get_type(entity.type_name)
        assert isinstance(type_, GraphQLObjectType), entity.type_name
        assert (interface in type_.interfaces) is entity.node, entity.type_name
        has_connection = f"{entity.type_name}Connection" in graphql_schema.type_map
        assert has_connection is entity.connection, entity.type_name


def test_every_row_names_a_by_id_loader_of_its_record() -> None:
    for entity in ENTITIES:
        if entity.loader is None:
            continue
        prop = inspect.getattr_static(Loaders, entity.loader, None)
        assert isinstance(prop, cached_property), f"Loaders has no {entity.loader}"
        returns = str(inspect.get_annotations(prop.func)["return"])
        assert returns == f"DataLoader[int, {entity.record.__name__} | None]", entity.loader


def test_every_row_names_the_model_its_record_is_read_from() -> None:
    for entity in ENTITIES:
        columns = set(entity.model.__table__.columns.keys())
        fields = {f.name for f in dataclasses.fields(entity.record)}  # type: ignore[arg-type]
        assert fields <= columns, entity.type_name


def test_every_entity_record_has_a_row() -> None:
    records = {
        value
        for _, value in inspect.getmembers(loaders.records, inspect.isclass)
        if hasattr(value, "type_name")
    }
    assert records == {entity.record for entity in ENTITIES}
    assert len(ENTITY_OF_TYPE) == len(ENTITIES), "two rows name one type"


def test_the_concerns_read_the_rows() -> None:
    for entity in ENTITIES:
        assert TYPE_HINTS[entity.type_name].max_age == entity.max_age
        assert TYPE_HINTS[entity.type_name].scope is entity.scope
        total = COSTS.get(f"{entity.type_name}Connection.totalCount")
        assert (total is not None and total.weight == 1) is entity.connection
    assert {e.record: e.type_name for e in ENTITIES if e.node} == TYPE_OF_RECORD
    assert TYPE_OF_RECORD[OrderRecord] == "Order"


def test_a_type_not_everyone_may_see_is_never_cached_publicly() -> None:
    with pytest.raises(ValueError, match="scope is PRIVATE"):
        Entity(OrderRecord, Order, "order_by_id", Visibility.ADMIN, 60, Scope.PUBLIC)
    with pytest.raises(ValueError, match="owner field"):
        Entity(OrderRecord, Order, "order_by_id", Visibility.OWNER_OR_ADMIN, 60, Scope.PRIVATE)
    for entity in ENTITIES:
        if entity.visibility is not Visibility.PUBLIC:
            assert entity.scope is Scope.PRIVATE


def test_tags_are_spelt_as_the_change_announcements_spell_them() -> None:
    assert entity_tag(ProductRecord, 42) == "Product:42"
    assert list_tag(OrderRecord) == "Order:list"
    assert list_tag(OrderRecord, "user_id", 3) == "Order:list:user_id=3"
    assert announce("placeOrder", order_id=7, user_id=3) == Changes(
        frozenset({"Order:7", "User:3"}), frozenset({"Order:list", "Order:list:user_id=3"})
    )
    assert announce("updateProduct", product_id=1, category_id=2, old_category_id=3) == Changes(
        frozenset({"Product:1"}),
        frozenset({"Product:list", "Product:list:category_id=2", "Product:list:category_id=3"}),
    )


def _loaders(db: Database) -> Loaders:
    return Loaders(sessionmaker=db.sessionmaker, dialect=db.engine.dialect.name)  # type: ignore[arg-type]


async def _viewer(db: Database, user_id: int) -> Viewer:
    return Viewer(await _loaders(db).user_by_id.load(user_id))


@pytest.mark.parametrize(
    ("visibility", "owner_sees", "other_sees", "admin_sees"),
    [
        (Visibility.PUBLIC, True, True, True),
        (Visibility.OWNER_OR_ADMIN, True, False, True),
        (Visibility.ADMIN, False, False, True),
    ],
)
async def test_node_applies_the_visibility_of_the_row(
    db: Database,
    factory: Factory,
    visibility: Visibility,
    owner_sees: bool,
    other_sees: bool,
    admin_sees: bool,
) -> None:
    owner = await factory.user()
    order = await factory.order(user_id=owner)
    viewers = {
        "owner": await _viewer(db, owner),
        "other": await _viewer(db, await factory.user()),
        "admin": await _viewer(db, await factory.user(role="admin")),
    }
    expected = {"owner": owner_sees, "other": other_sees, "admin": admin_sees}
    for who, viewer in viewers.items():
        loaders_ = _loaders(db)
        found: Any = await node(
            loaders=loaders_,
            viewer=viewer,
            loader="order_by_id",
            visibility=visibility,
            owner="user_id",
            id_=order,
        )
        assert (found is not None) is expected[who], who
        assert found is None or (isinstance(found, OrderRecord) and found.id == order)
    anonymous: Any = await node(
        loaders=_loaders(db),
        viewer=Viewer(),
        loader="order_by_id",
        visibility=visibility,
        owner="user_id",
        id_=order,
    )
    assert (anonymous is not None) is (visibility is Visibility.PUBLIC)


async def test_a_row_without_a_loader_resolves_to_null(db: Database) -> None:
    loaders_ = _loaders(db)
    item = ENTITY_OF_TYPE["OrderItem"]
    assert item.loader is None
    assert not item.node
    found = await node(
        loaders=loaders_,
        viewer=Viewer(UserRecord(1, "a@example.com", "A", None, "admin", datetime.now(UTC))),
        loader=item.loader,
        visibility=item.visibility,
        owner=item.owner,
        id_=1,
    )
    assert found is None
    assert db.statements == []
