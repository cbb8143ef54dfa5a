"""Aggregate loaders: one GROUP BY over all keys of a batch; zero (or None) for no rows."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from sqlalchemy import ColumnElement, FromClause, func, select

from loaders.batch import BatchFn, SessionMaker, fetch_all, unique
from loaders.records import ReviewStats
from loaders.sql import Dialect, Statement, in_keys, is_true
from models import Order, Product, Review

_reviews = Review.__table__
_orders = Order.__table__
_products = Product.__table__


def count_by(
    table: FromClause,
    key: str,
    *,
    where: Callable[[Dialect], ColumnElement[bool]] | None = None,
) -> BatchFn[int, int]:
    """A batch function counting, per key, the rows whose column `key` holds it."""

    @cache
    def statement(dialect: Dialect) -> Statement:
        column = table.c[key]
        conditions = [in_keys(column, dialect=dialect)]
        if where is not None:
            conditions.append(where(dialect))
        return select(column, func.count()).where(*conditions).group_by(column)

    async def load(
        keys: list[int], /, *, sessionmaker: SessionMaker, dialect: Dialect
    ) -> list[int]:
        rows = await fetch_all(sessionmaker, statement(dialect), {"keys": unique(keys)})
        counts: dict[int, int] = {key: count for key, count in rows}
        return [counts.get(key, 0) for key in keys]

    return load


review_count_by_user_id = count_by(_reviews, "user_id")

active_product_count_by_category_id = count_by(
    _products, "category_id", where=lambda dialect: is_true(_products, "active", dialect=dialect)
)


@cache
def _review_stats_statement(dialect: Dialect) -> Statement:
    product_id = _reviews.c.product_id
    return (
        select(product_id, func.count(), func.avg(_reviews.c.rating))
        .where(in_keys(product_id, dialect=dialect))
        .group_by(product_id)
    )


async def review_stats_by_product_id(
    keys: list[int], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[ReviewStats]:
    """The count and mean rating of each product's reviews (`average` None when none)."""
    rows = await fetch_all(sessionmaker, _review_stats_statement(dialect), {"keys": unique(keys)})
    # PostgreSQL averages a smallint as numeric (Decimal): hand out floats on both backends.
    stats = {key: ReviewStats(count, float(average)) for key, count, average in rows}
    return [stats.get(key, _NO_REVIEWS) for key in keys]


_NO_REVIEWS = ReviewStats(0, None)


@cache
def _order_count_statement(dialect: Dialect) -> Statement:
    user_id, status = _orders.c.user_id, _orders.c.status
    return (
        select(user_id, status, func.count())
        .where(in_keys(user_id, dialect=dialect))
        .group_by(user_id, status)
    )


async def order_count_by_user_id(
    keys: list[tuple[int, str | None]], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[int]:
    """The number of each user's orders of one status, or of any status for `None`.

    Keys of every status share one statement: it counts per (user, status) and
    the totals are summed here.
    """
    user_ids = unique(user_id for user_id, _ in keys)
    rows = await fetch_all(sessionmaker, _order_count_statement(dialect), {"keys": user_ids})
    counts: dict[tuple[int, str | None], int] = {}
    for user_id, status, count in rows:
        counts[(user_id, status)] = count
        counts[(user_id, None)] = counts.get((user_id, None), 0) + count
    return [counts.get(key, 0) for key in keys]
