"""Reads of reviews: per product, and each review's author and product."""

from __future__ import annotations

from typing import Any

from loaders import Loaders, loaded
from loaders.pagination import NEWEST
from loaders.records import ProductRecord, ReviewRecord
from resolvers.paging import Connection, page_args


async def reviews_of_product(
    *, loaders: Loaders, product: ProductRecord, first: int | None, after: str | None
) -> Connection[ReviewRecord]:
    args = page_args(first=first, after=after, sort=NEWEST, default=10)
    page = await loaders.reviews_page_by_product_id.load((product.id, args))

    async def count() -> int:
        stats = await loaders.review_stats_by_product_id.load(product.id)
        return int(stats.count)

    return Connection(page, count)


def author_of(*, loaders: Loaders, review: ReviewRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.user_by_id, review.user_id)


def product_of_review(*, loaders: Loaders, review: ReviewRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.product_by_id, review.product_id)
