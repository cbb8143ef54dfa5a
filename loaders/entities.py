"""By-key loaders: one row per key of a unique column, `None` for a key with no row."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import BigInteger, FromClause, Text, select
from sqlalchemy.types import TypeEngine

from loaders.batch import BatchFn, SessionMaker, fetch_all, unique
from loaders.records import (
    CategoryRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    UserRecord,
)
from loaders.sql import Dialect, Statement, field_index, in_keys, record_columns
from models import Category, Order, Product, Review, User

K = TypeVar("K")
R = TypeVar("R")


def rows_by_key(
    table: FromClause,
    record: type[R],
    key: str,
    *,
    item_type: type[TypeEngine[Any]] = BigInteger,
) -> BatchFn[K, R | None]:
    """A batch function loading the `record` of each key of the unique column `key`."""
    position = field_index(record, key)
    build = cast("Callable[..., R]", record)

    @cache
    def statement(dialect: Dialect) -> Statement:
        return select(*record_columns(table, record)).where(
            in_keys(table.c[key], dialect=dialect, item_type=item_type)
        )

    async def load(
        keys: list[K], /, *, sessionmaker: SessionMaker, dialect: Dialect
    ) -> list[R | None]:
        rows = await fetch_all(sessionmaker, statement(dialect), {"keys": unique(keys)})
        found = {row[position]: build(*row) for row in rows}
        return [found.get(k) for k in keys]

    return load


user_by_id: BatchFn[int, UserRecord | None] = rows_by_key(User.__table__, UserRecord, "id")
category_by_id: BatchFn[int, CategoryRecord | None] = rows_by_key(
    Category.__table__, CategoryRecord, "id"
)
product_by_id: BatchFn[int, ProductRecord | None] = rows_by_key(
    Product.__table__, ProductRecord, "id"
)
product_by_sku: BatchFn[str, ProductRecord | None] = rows_by_key(
    Product.__table__, ProductRecord, "sku", item_type=Text
)
order_by_id: BatchFn[int, OrderRecord | None] = rows_by_key(Order.__table__, OrderRecord, "id")
review_by_id: BatchFn[int, ReviewRecord | None] = rows_by_key(Review.__table__, ReviewRecord, "id")
