"""Reads of the catalog: products and categories."""

from __future__ import annotations

from asyncio import Future
from typing import Any

from loaders import Loaders, ProductQuery, listings, loaded
from loaders.pagination import BY_NAME, NEWEST, PRICE_ASC, PRICE_DESC, Sort
from loaders.records import CategoryRecord, ProductRecord, ReviewStats
from resolvers.errors import Forbidden, InvalidInput
from resolvers.paging import Connection, page_args
from resolvers.validation import require_max_length
from resolvers.viewer import Viewer

MAX_SEARCH_LENGTH = 100
"""Characters in `filter.search`: an ILIKE's cost grows with its pattern."""
MAX_SKU_LOOKUP_LENGTH = 100
"""Characters in a `sku` argument (writes allow 64; longer finds nothing anyway)."""

PRODUCT_SORTS: dict[str, Sort] = {
    "NEWEST": NEWEST,
    "PRICE_ASC": PRICE_ASC,
    "PRICE_DESC": PRICE_DESC,
    "NAME": BY_NAME,
}


async def product(
    *, loaders: Loaders, product_id: int | None, sku: str | None
) -> ProductRecord | None:
    """Exactly one of `product_id` or `sku`. Inactive products stay readable by id:
    past orders point at them."""
    if (product_id is None) == (sku is None):
        raise InvalidInput("Pass exactly one of `id` or `sku`.", field="id")
    if product_id is not None:
        return await loaders.product_by_id.load(product_id)
    assert sku is not None
    require_max_length(sku, field="sku", max_length=MAX_SKU_LOOKUP_LENGTH)
    return await loaders.product_by_sku.load(sku)


async def products(
    *,
    loaders: Loaders,
    viewer: Viewer,
    query: ProductQuery,
    sort: str,
    first: int | None,
    after: str | None,
) -> Connection[ProductRecord]:
    if query.active is not True and not viewer.is_admin:
        raise Forbidden(
            "Only admins may list inactive products (filter.active false or null).",
            field="filter.active",
        )
    if query.search is not None:
        require_max_length(query.search, field="filter.search", max_length=MAX_SEARCH_LENGTH)
    order = PRODUCT_SORTS[sort]
    args = page_args(first=first, after=after, sort=order, default=20)
    page = await listings.products_page(
        sessionmaker=loaders.sessionmaker,
        dialect=loaders.dialect,
        query=query,
        sort=order,
        args=args,
    )
    loaders.tag_listing(ProductRecord, page.items)

    async def count() -> int:
        return await listings.products_count(
            sessionmaker=loaders.sessionmaker, dialect=loaders.dialect, query=query
        )

    return Connection(page, count)


async def categories(*, loaders: Loaders) -> list[CategoryRecord]:
    found = await listings.all_categories(sessionmaker=loaders.sessionmaker)
    loaders.tag_listing(CategoryRecord, found)
    return found


def category_of(*, loaders: Loaders, product: ProductRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.category_by_id, product.category_id)


def parent_of(*, loaders: Loaders, category: CategoryRecord) -> Any:
    if category.parent_id is None:
        return None
    return loaded(loaders.category_by_id, category.parent_id)


def children_of(*, loaders: Loaders, category: CategoryRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.children_by_category_id, category.id)


async def products_of_category(
    *, loaders: Loaders, category: CategoryRecord, first: int | None, after: str | None
) -> Connection[ProductRecord]:
    args = page_args(first=first, after=after, sort=NEWEST, default=10)
    page = await loaders.products_page_by_category_id.load((category.id, args))

    def count() -> Future[Any]:
        return loaders.active_product_count_by_category_id.load(category.id)

    return Connection(page, count)


def average_rating_of(*, loaders: Loaders, product: ProductRecord) -> Any:
    """The mean rating (None without reviews), or an awaitable of it when not loaded yet."""
    stats = loaded(loaders.review_stats_by_product_id, product.id)
    return stats.average if isinstance(stats, ReviewStats) else _field_of(stats, "average")


def review_count_of(*, loaders: Loaders, product: ProductRecord) -> Any:
    """The number of reviews, or an awaitable of it when not loaded yet."""
    stats = loaded(loaders.review_stats_by_product_id, product.id)
    return stats.count if isinstance(stats, ReviewStats) else _field_of(stats, "count")


async def _field_of(stats: Future[ReviewStats], name: str) -> Any:
    return getattr(await stats, name)
