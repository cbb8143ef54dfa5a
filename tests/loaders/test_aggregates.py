from __future__ import annotations

import asyncio

import pytest

from loaders import Loaders, ReviewStats
from models import Order, Product, Review, User
from tests.conftest import Database
from tests.factories import Factory, at
from tests.loaders.conftest import insert_rows

MISSING = 10**9
STATUSES = ("pending", "paid", "shipped", "completed", "cancelled")


async def _users(db: Database, n: int) -> list[int]:
    rows = [{"email": f"a{i}@example.com", "name": f"a {i}", "created_at": at(i)} for i in range(n)]
    return await insert_rows(db, User, rows)


@pytest.mark.parametrize("n", [5, 20])
async def test_review_stats_by_product_id(
    db: Database, factory: Factory, loaders: Loaders, n: int
) -> None:
    category_id = await factory.category()
    products = await insert_rows(
        db,
        Product,
        [
            {
                "sku": f"P{i}",
                "name": f"p {i}",
                "price_cents": 1,
                "category_id": category_id,
                "created_at": at(i),
                "updated_at": at(i),
            }
            for i in range(n)
        ],
    )
    users = await _users(db, 4)
    # Product i gets i % 4 reviews rated 1 + (i + j) % 5.
    ratings = {p: [1 + (i + j) % 5 for j in range(i % 4)] for i, p in enumerate(products)}
    await insert_rows(
        db,
        Review,
        [
            {
                "product_id": p,
                "user_id": users[j],
                "rating": rating,
                "body": "",
                "created_at": at(j),
            }
            for p, rs in ratings.items()
            for j, rating in enumerate(rs)
        ],
    )
    keys = [*reversed(products), MISSING]
    db.statements.clear()

    results = await asyncio.gather(*(loaders.review_stats_by_product_id.load(k) for k in keys))

    assert len(db.statements) == 1
    assert results[-1] == ReviewStats(0, None)
    for product_id, stats in zip(keys[:-1], results[:-1], strict=True):
        rs = ratings[product_id]
        assert stats.count == len(rs)
        if rs:
            assert isinstance(stats.average, float)
            assert stats.average == pytest.approx(sum(rs) / len(rs))
        else:
            assert stats.average is None


@pytest.mark.parametrize("n", [5, 20])
async def test_review_count_by_user_id(
    db: Database, factory: Factory, loaders: Loaders, n: int
) -> None:
    users = await _users(db, n)
    products = [await factory.product() for _ in range(3)]
    counts = {u: i % 4 for i, u in enumerate(users)}
    await insert_rows(
        db,
        Review,
        [
            {"product_id": products[j], "user_id": u, "rating": 3, "body": "", "created_at": at(j)}
            for u, count in counts.items()
            for j in range(min(count, 3))
        ],
    )
    keys = [*users, MISSING]
    db.statements.clear()

    results = await loaders.review_count_by_user_id.load_many(keys)

    assert len(db.statements) == 1
    assert results == [min(counts[u], 3) for u in users] + [0]


@pytest.mark.parametrize("n", [5, 20])
async def test_order_count_by_user_id_and_status(db: Database, loaders: Loaders, n: int) -> None:
    users = await _users(db, n)
    # User i has i % 6 orders with statuses cycling through STATUSES.
    orders = [
        (u, STATUSES[(i + j) % len(STATUSES)]) for i, u in enumerate(users) for j in range(i % 6)
    ]
    await insert_rows(
        db,
        Order,
        [
            {"user_id": u, "status": status, "total_cents": 0, "created_at": at(k)}
            for k, (u, status) in enumerate(orders)
        ],
    )
    keys: list[tuple[int, str | None]] = [
        (u, status) for u in users for status in (None, "paid", "cancelled")
    ]
    keys.append((MISSING, None))
    keys.append((MISSING, "paid"))
    db.statements.clear()

    results = await asyncio.gather(*(loaders.order_count_by_user_id.load(k) for k in keys))

    assert len(db.statements) == 1
    expected = [
        sum(1 for ou, os in orders if ou == u and (status is None or os == status))
        for u, status in keys
    ]
    assert results == expected
    assert any(r > 1 for r in results)


@pytest.mark.parametrize("n", [5, 20])
async def test_active_product_count_by_category_id(
    db: Database, factory: Factory, loaders: Loaders, n: int
) -> None:
    categories = [await factory.category() for _ in range(n)]
    rows = [
        {
            "sku": f"C{i}-{j}",
            "name": "x",
            "price_cents": 1,
            "category_id": c,
            "active": j % 3 != 2,
            "created_at": at(j),
            "updated_at": at(j),
        }
        for i, c in enumerate(categories)
        for j in range(i % 5)
    ]
    await insert_rows(db, Product, rows)
    keys = [*reversed(categories), MISSING]
    db.statements.clear()

    results = await loaders.active_product_count_by_category_id.load_many(keys)

    assert len(db.statements) == 1
    expected = [sum(1 for r in rows if r["category_id"] == c and r["active"]) for c in keys]
    assert results == expected
    assert results != [0] * len(keys)
