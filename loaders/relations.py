"""One-to-many loaders: the rows pointing at each key, in a fixed order, `[]` for none."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import FromClause, select

from loaders.batch import BatchFn, SessionMaker, fetch_all, unique
from loaders.records import CategoryRecord, OrderItemRecord
from loaders.sql import Dialect, Statement, field_index, in_keys, record_columns
from models import Category, OrderItem

R = TypeVar("R")


def rows_by_parent(
    table: FromClause, record: type[R], parent: str, *, order_by: Sequence[str]
) -> BatchFn[int, list[R]]:
    """A batch function loading, per key, the `record`s whose column `parent` holds it."""
    position = field_index(record, parent)
    build = cast("Callable[..., R]", record)

    @cache
    def statement(dialect: Dialect) -> Statement:
        return (
            select(*record_columns(table, record))
            .where(in_keys(table.c[parent], dialect=dialect))
            .order_by(*(table.c[name] for name in order_by))
        )

    async def load(
        keys: list[int], /, *, sessionmaker: SessionMaker, dialect: Dialect
    ) -> list[list[R]]:
        rows = await fetch_all(sessionmaker, statement(dialect), {"keys": unique(keys)})
        groups: dict[Any, list[R]] = {key: [] for key in keys}
        for row in rows:
            groups[row[position]].append(build(*row))
        return [groups[key] for key in keys]

    return load


items_by_order_id: BatchFn[int, list[OrderItemRecord]] = rows_by_parent(
    OrderItem.__table__, OrderItemRecord, "order_id", order_by=("id",)
)
"""An order's line items in insertion order."""

children_by_category_id: BatchFn[int, list[CategoryRecord]] = rows_by_parent(
    Category.__table__, CategoryRecord, "parent_id", order_by=("name", "id")
)
"""A category's subcategories by name."""
