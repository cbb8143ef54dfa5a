"""Root listings: filtered, keyset-paginated lists and their counts, and the viewer lookup.

Plain async functions rather than DataLoaders: each is called once per field,
with arguments, not per key. Each runs one statement in its own short session.
Statements are cached per shape (which filters are present, the sort, whether
there is a cursor); filter values travel as bind parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, FromClause, Integer, bindparam, func, not_, select

from loaders import keyset
from loaders.batch import SessionMaker, fetch_all
from loaders.pagination import NEWEST, Page, PageArgs, Sort
from loaders.records import CategoryRecord, OrderRecord, ProductRecord, UserRecord
from loaders.sql import Dialect, Statement, contains_ci, is_true, like_pattern, record_columns
from models import ApiToken, Category, Order, Product, User

R = TypeVar("R")

_products = Product.__table__
_users = User.__table__
_orders = Order.__table__
_categories = Category.__table__
_tokens = ApiToken.__table__


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """Which products a listing holds; `None` means no filter on that field.

    `search` matches a case-insensitive substring of the name (`%` and `_` are
    plain characters). `active` defaults to active products only, as the API
    does; `None` lists both.
    """

    category_id: int | None = None
    search: str | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    active: bool | None = True


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Which orders a listing holds; `None` means no filter on that field.

    `created_after` is inclusive and `created_before` exclusive, so adjacent
    ranges neither overlap nor leave a gap.
    """

    status: str | None = None
    user_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _limit() -> ColumnElement[int]:
    return bindparam("limit", type_=Integer)


def _page_statement(
    table: FromClause,
    record: type,
    sort: Sort,
    conditions: list[ColumnElement[bool]],
    *,
    after: bool,
) -> Statement:
    if after:
        conditions = [*conditions, keyset.after(table, sort)]
    return (
        select(*record_columns(table, record))
        .where(*conditions)
        .order_by(*keyset.order_by(table, sort))
        .limit(_limit())
    )


async def _page(
    sessionmaker: SessionMaker,
    statement: Statement,
    params: dict[str, Any],
    record: type[R],
    sort: Sort,
    args: PageArgs,
) -> Page[R]:
    build = cast("Callable[..., R]", record)
    params = {**params, **keyset.after_params(args), "limit": args.first + 1}
    rows = await fetch_all(sessionmaker, statement, params)
    return Page(
        items=[build(*row) for row in rows[: args.first]],
        has_next_page=len(rows) > args.first,
        has_previous_page=args.after is not None,
        sort=sort,
    )


async def _count(sessionmaker: SessionMaker, statement: Statement, params: dict[str, Any]) -> int:
    rows = await fetch_all(sessionmaker, statement, params)
    return int(rows[0][0])


# Products ----------------------------------------------------------------------------

_ProductShape = tuple[bool, bool, bool, bool, bool | None]
"""Which ProductQuery filters are set: category, search, min price, max price; and `active`."""


def _product_shape(query: ProductQuery) -> _ProductShape:
    return (
        query.category_id is not None,
        query.search is not None,
        query.min_price_cents is not None,
        query.max_price_cents is not None,
        query.active,
    )


def _product_params(query: ProductQuery) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if query.category_id is not None:
        params["category_id"] = query.category_id
    if query.search is not None:
        params["search"] = like_pattern(query.search)
    if query.min_price_cents is not None:
        params["min_price_cents"] = query.min_price_cents
    if query.max_price_cents is not None:
        params["max_price_cents"] = query.max_price_cents
    return params


def _product_conditions(dialect: Dialect, shape: _ProductShape) -> list[ColumnElement[bool]]:
    category, search, min_price, max_price, active = shape
    c = _products.c
    conditions: list[ColumnElement[bool]] = []
    if category:
        conditions.append(c.category_id == bindparam("category_id"))
    if search:
        conditions.append(contains_ci(c.name, dialect=dialect, name="search"))
    if min_price:
        conditions.append(c.price_cents >= bindparam("min_price_cents"))
    if max_price:
        conditions.append(c.price_cents <= bindparam("max_price_cents"))
    # Written as the bare column (not a parameter) so the partial index on active
    # products serves category listings.
    if active is not None:
        condition = is_true(_products, "active", dialect=dialect)
        conditions.append(condition if active else not_(condition))
    return conditions


@cache
def _products_page_statement(
    dialect: Dialect, shape: _ProductShape, sort: Sort, after: bool
) -> Statement:
    conditions = _product_conditions(dialect, shape)
    if dialect == "postgresql" and shape[1]:
        return _searched_page_statement(conditions, sort, after=after)
    return _page_statement(_products, ProductRecord, sort, conditions, after=after)


def _searched_page_statement(
    conditions: list[ColumnElement[bool]], sort: Sort, *, after: bool
) -> Statement:
    """A name search on PostgreSQL: the matches first (a MATERIALIZED CTE), then their order.

    asyncpg's prepared statement soon runs on a generic plan, which cannot see the
    pattern: it guesses a few matches and walks the sort's index until `LIMIT`
    rows pass the ILIKE, i.e. every row when few or none match. Planned apart,
    the filter is answered by the trigram index (`ix_products_name_trgm`) and
    only the matches are sorted.
    """
    if after:
        conditions = [*conditions, keyset.after(_products, sort)]
    matched = (
        select(*record_columns(_products, ProductRecord))
        .where(*conditions)
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    return (
        select(*record_columns(matched, ProductRecord))
        .order_by(*keyset.order_by(matched, sort))
        .limit(_limit())
    )


@cache
def _products_count_statement(dialect: Dialect, shape: _ProductShape) -> Statement:
    conditions = _product_conditions(dialect, shape)
    return select(func.count()).select_from(_products).where(*conditions)


async def products_page(
    *,
    sessionmaker: SessionMaker,
    dialect: Dialect,
    query: ProductQuery,
    sort: Sort,
    args: PageArgs,
) -> Page[ProductRecord]:
    """The products matching `query` in `sort` order: `args.first` of them after `args.after`."""
    statement = _products_page_statement(
        dialect, _product_shape(query), sort, args.after is not None
    )
    return await _page(sessionmaker, statement, _product_params(query), ProductRecord, sort, args)


async def products_count(
    *, sessionmaker: SessionMaker, dialect: Dialect, query: ProductQuery
) -> int:
    """The number of products matching `query`."""
    statement = _products_count_statement(dialect, _product_shape(query))
    return await _count(sessionmaker, statement, _product_params(query))


# Users -------------------------------------------------------------------------------

_USERS_PAGE = {
    after: _page_statement(_users, UserRecord, NEWEST, [], after=after) for after in (False, True)
}
_USERS_COUNT = select(func.count()).select_from(_users)


async def users_page(*, sessionmaker: SessionMaker, args: PageArgs) -> Page[UserRecord]:
    """All users, newest first."""
    statement = _USERS_PAGE[args.after is not None]
    return await _page(sessionmaker, statement, {}, UserRecord, NEWEST, args)


async def users_count(*, sessionmaker: SessionMaker) -> int:
    """The number of users."""
    return await _count(sessionmaker, _USERS_COUNT, {})


# Orders ------------------------------------------------------------------------------

_ORDER_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "status": lambda: _orders.c.status == bindparam("status"),
    "user_id": lambda: _orders.c.user_id == bindparam("user_id"),
    "created_after": lambda: _orders.c.created_at >= bindparam("created_after"),
    "created_before": lambda: _orders.c.created_at < bindparam("created_before"),
}


def _order_params(query: OrderQuery) -> dict[str, Any]:
    values = {
        "status": query.status,
        "user_id": query.user_id,
        "created_after": query.created_after,
        "created_before": query.created_before,
    }
    return {name: value for name, value in values.items() if value is not None}


def _order_conditions(filters: tuple[str, ...]) -> list[ColumnElement[bool]]:
    return [_ORDER_FILTERS[name]() for name in filters]


@cache
def _orders_page_statement(filters: tuple[str, ...], after: bool) -> Statement:
    conditions = _order_conditions(filters)
    return _page_statement(_orders, OrderRecord, NEWEST, conditions, after=after)


@cache
def _orders_count_statement(filters: tuple[str, ...]) -> Statement:
    return select(func.count()).select_from(_orders).where(*_order_conditions(filters))


async def orders_page(
    *, sessionmaker: SessionMaker, dialect: Dialect, query: OrderQuery, args: PageArgs
) -> Page[OrderRecord]:
    """The orders matching `query`, newest first.

    `dialect` is taken for the same call shape as `products_page`; the SQL is
    the same on both backends.
    """
    params = _order_params(query)
    statement = _orders_page_statement(tuple(params), args.after is not None)
    return await _page(sessionmaker, statement, params, OrderRecord, NEWEST, args)


async def orders_count(*, sessionmaker: SessionMaker, dialect: Dialect, query: OrderQuery) -> int:
    """The number of orders matching `query` (`dialect` as in `orders_page`)."""
    params = _order_params(query)
    return await _count(sessionmaker, _orders_count_statement(tuple(params)), params)


# Categories and the viewer -----------------------------------------------------------

_ALL_CATEGORIES = select(*record_columns(_categories, CategoryRecord)).order_by(
    _categories.c.parent_id.is_not(None), _categories.c.name, _categories.c.id
)


async def all_categories(*, sessionmaker: SessionMaker) -> list[CategoryRecord]:
    """Every category: roots first, then by name, then by id."""
    rows = await fetch_all(sessionmaker, _ALL_CATEGORIES, {})
    return [CategoryRecord(*row) for row in rows]


_VIEWER = (
    select(*record_columns(_users, UserRecord))
    .join(_tokens, _tokens.c.user_id == _users.c.id)
    .where(_tokens.c.token_hash == bindparam("token_hash"), _tokens.c.revoked_at.is_(None))
)


async def viewer_by_token_hash(*, sessionmaker: SessionMaker, token_hash: str) -> UserRecord | None:
    """The user holding the API token whose SHA-256 hex digest is `token_hash`.

    `None` for an unknown or revoked token.
    """
    rows = await fetch_all(sessionmaker, _VIEWER, {"token_hash": token_hash})
    return UserRecord(*rows[0]) if rows else None
