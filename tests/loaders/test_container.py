from __future__ import annotations

import asyncio

from aiodataloader import DataLoader

from loaders import Loaders, PageArgs
from tests.conftest import Database
from tests.factories import Factory


async def test_loaders_are_created_on_first_use_and_kept(loaders: Loaders) -> None:
    assert "product_by_id" not in vars(loaders)

    loader = loaders.product_by_id

    assert isinstance(loader, DataLoader)
    assert loaders.product_by_id is loader


async def test_a_request_loads_a_key_once(db: Database, factory: Factory, loaders: Loaders) -> None:
    product_id = await factory.product()
    db.statements.clear()

    first = await loaders.product_by_id.load(product_id)
    again = await loaders.product_by_id.load(product_id)

    assert first is again
    assert len(db.statements) == 1


async def test_sibling_loaders_batch_separately_and_concurrently(
    db: Database, factory: Factory, loaders: Loaders
) -> None:
    products = [await factory.product() for _ in range(4)]
    reviews = [await factory.review(product_id=p) for p in products]
    db.statements.clear()

    results = await asyncio.gather(
        loaders.product_by_id.load_many(products),
        loaders.review_by_id.load_many(reviews),
        loaders.review_stats_by_product_id.load_many(products),
        loaders.reviews_page_by_product_id.load_many([(p, PageArgs(first=1)) for p in products]),
    )

    assert len(db.statements) == 4
    assert [p.id for p in results[0]] == products
    assert [r.id for r in results[1]] == reviews
    assert [s.count for s in results[2]] == [1, 1, 1, 1]
    assert [[r.id for r in page.items] for page in results[3]] == [[r] for r in reviews]


async def test_requests_do_not_share_caches(
    db: Database, factory: Factory, loaders: Loaders
) -> None:
    user_id = await factory.user()
    other = Loaders(sessionmaker=loaders.sessionmaker, dialect=loaders.dialect)
    db.statements.clear()

    await loaders.user_by_id.load(user_id)
    await other.user_by_id.load(user_id)

    assert len(db.statements) == 2
