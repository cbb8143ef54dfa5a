"""Nested page loaders: a page of a list under each of many parents, in one query.

Top-N per group (see `sql.first_rows_per_key`): the first `first + 1` rows of
every parent, the extra row only telling `has_next_page`; an `after` cursor
applies inside each parent's list. Keys with the same page arguments (and
filters) share one statement, whatever their number; keys with different ones
get one statement per distinct set, run one after another in the batch's one
session. `first` may be 0: an empty page that still knows `has_next_page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, FromClause, bindparam

from loaders import keyset
from loaders.batch import SessionMaker, fetch, read_connection, unique
from loaders.pagination import NEWEST, Page, PageArgs, Sort
from loaders.records import OrderRecord, ProductRecord, ReviewRecord
from loaders.sql import Dialect, Statement, field_index, field_names, first_rows_per_key, is_true
from models import Order, Product, Review

R = TypeVar("R")

Filters = tuple[tuple[str, Any], ...]
"""Equality filters on columns of the child table, as (column, value) pairs."""

Request = tuple[int, Filters, PageArgs]
"""One key, normalised: (parent id, filters, page arguments)."""


class PagesByParent(Generic[R]):
    """Pages of `record` rows per value of their `parent` column, under one `sort`."""

    def __init__(
        self,
        table: FromClause,
        record: type[R],
        *,
        parent: str,
        sort: Sort,
        where: Callable[[Dialect], ColumnElement[bool]] | None = None,
    ) -> None:
        self.table = table
        self.record = record
        self.parent = parent
        self.sort = sort
        self.where = where
        self.parent_index = field_index(record, parent)
        self.statement = cache(self._statement)

    def _statement(self, dialect: Dialect, filters: tuple[str, ...], after: bool) -> Statement:
        table = self.table
        conditions = [] if self.where is None else [self.where(dialect)]
        conditions.extend(table.c[name] == bindparam(name) for name in filters)
        if after:
            conditions.append(keyset.after(table, self.sort))
        return first_rows_per_key(
            table,
            field_names(self.record),
            self.parent,
            dialect=dialect,
            where=conditions,
            order_by=partial(keyset.order_by, sort=self.sort),
        )

    async def load(
        self, requests: Sequence[Request], *, sessionmaker: SessionMaker, dialect: Dialect
    ) -> list[Page[R]]:
        """One page per request, in request order."""
        groups: dict[tuple[Filters, PageArgs], list[int]] = {}
        for parent_id, filters, args in requests:
            groups.setdefault((filters, args), []).append(parent_id)
        pages: dict[Request, Page[R]] = {}
        build = cast("Callable[..., R]", self.record)
        async with read_connection(sessionmaker) as connection:
            for (filters, args), parent_ids in groups.items():
                statement = self.statement(
                    dialect, tuple(name for name, _ in filters), args.after is not None
                )
                params = {
                    "keys": unique(parent_ids),
                    "limit": args.first + 1,
                    **dict(filters),
                    **keyset.after_params(args),
                }
                rows_of: dict[int, list[Any]] = {parent_id: [] for parent_id in parent_ids}
                for row in await fetch(connection, statement, params):
                    rows_of[row[self.parent_index]].append(row)
                for parent_id, rows in rows_of.items():
                    pages[(parent_id, filters, args)] = Page(
                        items=[build(*row) for row in rows[: args.first]],
                        has_next_page=len(rows) > args.first,
                        has_previous_page=args.after is not None,
                        sort=self.sort,
                    )
        return [pages[request] for request in requests]


_reviews_by_product = PagesByParent(
    Review.__table__, ReviewRecord, parent="product_id", sort=NEWEST
)
_reviews_by_user = PagesByParent(Review.__table__, ReviewRecord, parent="user_id", sort=NEWEST)
_orders_by_user = PagesByParent(Order.__table__, OrderRecord, parent="user_id", sort=NEWEST)
_products = Product.__table__
_active_products_by_category = PagesByParent(
    _products,
    ProductRecord,
    parent="category_id",
    sort=NEWEST,
    where=lambda dialect: is_true(_products, "active", dialect=dialect),
)


async def reviews_page_by_product_id(
    keys: list[tuple[int, PageArgs]], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[Page[ReviewRecord]]:
    """A product's reviews, newest first."""
    return await _reviews_by_product.load(
        [(product_id, (), args) for product_id, args in keys],
        sessionmaker=sessionmaker,
        dialect=dialect,
    )


async def reviews_page_by_user_id(
    keys: list[tuple[int, PageArgs]], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[Page[ReviewRecord]]:
    """A user's reviews, newest first."""
    return await _reviews_by_user.load(
        [(user_id, (), args) for user_id, args in keys],
        sessionmaker=sessionmaker,
        dialect=dialect,
    )


async def orders_page_by_user_id(
    keys: list[tuple[int, str | None, PageArgs]],
    /,
    *,
    sessionmaker: SessionMaker,
    dialect: Dialect,
) -> list[Page[OrderRecord]]:
    """A user's orders of one status (or any, for `None`), newest first."""
    return await _orders_by_user.load(
        [
            (user_id, () if status is None else (("status", status),), args)
            for user_id, status, args in keys
        ],
        sessionmaker=sessionmaker,
        dialect=dialect,
    )


async def products_page_by_category_id(
    keys: list[tuple[int, PageArgs]], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[Page[ProductRecord]]:
    """A category's active products, newest first."""
    return await _active_products_by_category.load(
        [(category_id, (), args) for category_id, args in keys],
        sessionmaker=sessionmaker,
        dialect=dialect,
    )
