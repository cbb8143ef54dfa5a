from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from loaders import Loaders, entities
from loaders.records import CategoryRecord, OrderRecord, ProductRecord, ReviewRecord, UserRecord
from models import Category, Order, Product, Review, User
from tests.conftest import Database
from tests.factories import at
from tests.loaders.conftest import insert_rows

MISSING = 10**9


async def _users(db: Database, n: int) -> list[int]:
    return await insert_rows(
        db,
        User,
        [
            {"email": f"u{i}@example.com", "name": f"user {i}", "created_at": at(i)}
            for i in range(n)
        ],
    )


async def _categories(db: Database, n: int) -> list[int]:
    return await insert_rows(db, Category, [{"name": f"category {i}"} for i in range(n)])


async def _products(db: Database, n: int) -> list[int]:
    (category_id,) = await _categories(db, 1)
    return await insert_rows(
        db,
        Product,
        [
            {
                "sku": f"SKU-{i}",
                "name": f"product {i}",
                "price_cents": 100 + i,
                "category_id": category_id,
                "created_at": at(i),
                "updated_at": at(i),
            }
            for i in range(n)
        ],
    )


async def _orders(db: Database, n: int) -> list[int]:
    users = await _users(db, 1)
    return await insert_rows(
        db,
        Order,
        [
            {"user_id": users[0], "status": "paid", "total_cents": i, "created_at": at(i)}
            for i in range(n)
        ],
    )


async def _reviews(db: Database, n: int) -> list[int]:
    users = await _users(db, n)
    (product_id,) = await _products(db, 1)
    return await insert_rows(
        db,
        Review,
        [
            {
                "product_id": product_id,
                "user_id": user_id,
                "rating": 1 + i % 5,
                "body": f"review {i}",
                "created_at": at(i),
            }
            for i, user_id in enumerate(users)
        ],
    )


BY_ID = [
    ("user_by_id", _users, UserRecord),
    ("category_by_id", _categories, CategoryRecord),
    ("product_by_id", _products, ProductRecord),
    ("order_by_id", _orders, OrderRecord),
    ("review_by_id", _reviews, ReviewRecord),
]


@pytest.mark.parametrize("n", [5, 20])
@pytest.mark.parametrize(("name", "create", "record"), BY_ID, ids=[row[0] for row in BY_ID])
async def test_by_id_loads_every_key_in_one_statement(
    db: Database, loaders: Loaders, n: int, name: str, create: Any, record: type
) -> None:
    ids = await create(db, n)
    keys = [*ids, MISSING]
    random.Random(n).shuffle(keys)
    db.statements.clear()

    loader = getattr(loaders, name)
    results = await asyncio.gather(*(loader.load(key) for key in keys))

    assert len(db.statements) == 1
    for key, result in zip(keys, results, strict=True):
        if key == MISSING:
            assert result is None
        else:
            assert isinstance(result, record)
            assert result.id == key


@pytest.mark.parametrize("n", [5, 20])
async def test_product_by_sku(db: Database, loaders: Loaders, n: int) -> None:
    ids = await _products(db, n)
    keys = [f"SKU-{i}" for i in reversed(range(n))] + ["NO-SUCH-SKU"]
    db.statements.clear()

    results = await loaders.product_by_sku.load_many(keys)

    assert len(db.statements) == 1
    assert [r.sku if r else None for r in results] == [*keys[:-1], None]
    assert [r.id if r else None for r in results] == [*reversed(ids), None]


async def test_records_carry_every_column(db: Database, loaders: Loaders) -> None:
    created = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    (category_id,) = await _categories(db, 1)
    (product_id,) = await insert_rows(
        db,
        Product,
        [
            {
                "sku": "S-1",
                "name": "lamp",
                "description": "bright",
                "price_cents": 4200,
                "category_id": category_id,
                "active": False,
                "created_at": created,
                "updated_at": created,
            }
        ],
    )

    product = await loaders.product_by_id.load(product_id)

    assert product == ProductRecord(
        product_id, "S-1", "lamp", "bright", 4200, category_id, False, created, created
    )
    assert product.created_at.tzinfo is not None
    assert product.created_at.utcoffset() == UTC.utcoffset(None)


async def test_duplicate_keys_are_queried_once(
    db: Database, loaders: Loaders, dialect: Any
) -> None:
    ids = await _users(db, 3)
    db.statements.clear()

    results = await entities.user_by_id(
        [ids[0], ids[1], ids[0], MISSING], sessionmaker=db.sessionmaker, dialect=dialect
    )

    assert [r.id if r else None for r in results] == [ids[0], ids[1], ids[0], None]
    (statement,) = db.statements
    if dialect == "sqlite":
        assert statement.count("?") == 3


async def test_postgresql_sql_text_does_not_depend_on_key_count(
    db: Database, loaders: Loaders, dialect: Any
) -> None:
    ids = await _users(db, 30)
    db.statements.clear()

    await entities.user_by_id(ids[:3], sessionmaker=db.sessionmaker, dialect=dialect)
    await entities.user_by_id(ids, sessionmaker=db.sessionmaker, dialect=dialect)

    first, second = db.statements
    if dialect == "postgresql":
        assert first == second
        assert "ANY" in first
    else:
        assert first != second  # SQLite expands IN per key count, by design
