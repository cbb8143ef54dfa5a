"""Loaders tag the request with what they read, in the vocabulary of change announcements."""

from __future__ import annotations

import asyncio

from loaders import Loaders
from loaders.pagination import PageArgs
from schema.global_id import to_global_id
from tests.conftest import Api, Database
from tests.factories import Factory


def _loaders(db: Database) -> Loaders:
    return Loaders(sessionmaker=db.sessionmaker, dialect=db.backend)  # type: ignore[arg-type]


async def test_entity_list_and_aggregate_tags(db: Database, factory: Factory) -> None:
    category = await factory.category()
    product = await factory.product(category_id=category)
    user = await factory.user()
    review = await factory.review(product_id=product, user_id=user)
    order = await factory.order(user_id=user, items=[(product, 1, 1)])
    loaders = _loaders(db)
    await asyncio.gather(
        loaders.product_by_id.load(product),
        loaders.product_by_id.load(10**9),
        loaders.review_stats_by_product_id.load(product),
        loaders.items_by_order_id.load(order),
        loaders.order_count_by_user_id.load((user, None)),
        loaders.reviews_page_by_product_id.load((product, PageArgs(first=5))),
        loaders.products_page_by_category_id.load((category, PageArgs(first=5))),
        loaders.product_by_sku.load("no-such-sku"),
    )
    assert loaders.tags == {
        f"Product:{product}",
        f"Order:{order}",
        f"User:{user}",
        f"Order:list:user_id={user}",
        f"Review:{review}",
        f"Review:list:product_id={product}",
        f"Product:list:category_id={category}",
        "Product:list",
    }


async def test_a_response_reads_tags_matching_what_writes_announce(
    api: Api, factory: Factory
) -> None:
    """Every tag a write announces is one the matching read records."""
    from resolvers.changes import announce

    product = await factory.product()
    user = await factory.user()
    captured: list[set[str]] = []
    original = Loaders.__init__

    def spy(self: Loaders, **kw: object) -> None:
        original(self, **kw)  # type: ignore[arg-type]
        captured.append(self.tags)

    Loaders.__init__ = spy  # type: ignore[method-assign]
    try:
        await api.data(
            "query($p: ID!, $u: ID!) { products { nodes { id } }"
            " product(id: $p) { reviewCount reviews { nodes { id } } }"
            " user(id: $u) { reviews { totalCount } } }",
            {"p": to_global_id("Product", product), "u": to_global_id("User", user)},
        )
    finally:
        Loaders.__init__ = original  # type: ignore[method-assign]
    read = set().union(*captured)
    review_tags = announce("addReview", review_id=0, product_id=product, user_id=user).lists
    assert review_tags <= read
    assert f"Product:{product}" in read
    assert announce("createProduct", product_id=0, category_id=0).lists & read == {"Product:list"}
