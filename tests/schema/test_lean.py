"""`@lean` fields with arguments (schema/lean.py): called directly with their arguments by
their Python names, answering as Strawberry's wrapper did; refused at startup when the
wrapper would have had work to do."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from graphql import graphql

from schema.lean import install_lean_resolvers, is_lean_resolver, lean


@strawberry.enum
class Order(enum.Enum):
    NEWEST = "newest"


def _schema(query: type) -> strawberry.Schema:
    return strawberry.Schema(query=query)


@strawberry.type
class Item:
    @strawberry.field
    @lean
    def things(
        self,
        root: Any,
        info: strawberry.Info,
        max_count: int = 2,
        after_id: strawberry.ID | None = None,
    ) -> list[str]:
        return [f"{info.context['who']} {after_id} {n}" for n in range(max_count)]

    @strawberry.field
    @lean
    def count(self, root: Any, first: int | None = 3) -> int | None:
        return first


@strawberry.type
class ItemQuery:
    @strawberry.field
    def item(self) -> Item:
        return Item()


async def test_arguments_reach_the_function_by_their_python_names() -> None:
    schema = _schema(ItemQuery)
    wrapped = {
        name: schema._schema.type_map["Item"].fields[name].resolve  # type: ignore[union-attr]
        for name in ("things", "count")
    }
    strawberry_answer = await _run(schema, context={"who": "me"})

    assert install_lean_resolvers(schema) == 2
    for name, resolve in wrapped.items():
        direct = schema._schema.type_map["Item"].fields[name].resolve  # type: ignore[union-attr]
        assert direct is not resolve
        assert direct is not None
        assert is_lean_resolver(direct)
    assert await _run(schema, context={"who": "me"}) == strawberry_answer
    assert strawberry_answer == {
        "item": {
            "things": ["me 7 0", "me 7 1", "me 7 2"],
            "defaults": ["me None 0", "me None 1"],
            "count": 3,
            "none": None,
        }
    }


@strawberry.type
class EnumQuery:
    @strawberry.field
    @lean
    def things(self, root: Any, order: Order = Order.NEWEST) -> list[str]:
        return [order.value]


def test_a_lean_field_whose_arguments_need_converting_is_refused() -> None:
    with pytest.raises(
        TypeError, match=r"EnumQuery\.things: its arguments must be built-in scalars"
    ):
        install_lean_resolvers(_schema(EnumQuery))


async def _run(schema: strawberry.Schema, *, context: dict[str, str]) -> Any:
    result = await graphql(
        schema._schema,
        "{ item { things(maxCount: 3, afterId: 7) defaults: things count"
        " none: count(first: null) } }",
        context_value=context,
    )
    assert result.errors is None, result.errors
    return result.data
