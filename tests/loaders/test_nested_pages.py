from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select

from loaders import NEWEST, Loaders, Page, PageArgs
from models import Category, Order, Product, Review, User
from tests.conftest import Database
from tests.factories import at
from tests.loaders.conftest import insert_rows

MISSING = 10**9
STATUSES = ("pending", "paid", "shipped", "completed", "cancelled")


async def _users(db: Database, n: int) -> list[int]:
    rows = [{"email": f"n{i}@example.com", "name": f"n {i}", "created_at": at(i)} for i in range(n)]
    return await insert_rows(db, User, rows)


async def _products(db: Database, n: int, category_id: int | None = None) -> list[int]:
    if category_id is None:
        (category_id,) = await insert_rows(db, Category, [{"name": "c"}])
    rows = [
        {
            "sku": f"N{i}",
            "name": f"p {i}",
            "price_cents": 1,
            "category_id": category_id,
            "created_at": at(i),
            "updated_at": at(i),
        }
        for i in range(n)
    ]
    return await insert_rows(db, Product, rows)


async def _reviewed_products(db: Database, n: int) -> list[int]:
    """`n` products, product i with i % 7 reviews; created_at values tie within a product."""
    products = await _products(db, n)
    users = await _users(db, 6)
    rows = [
        {
            "product_id": p,
            "user_id": users[j],
            "rating": 5,
            "body": f"{i}/{j}",
            "created_at": at((i + j) % 3),
        }
        for i, p in enumerate(products)
        for j in range(i % 7)
    ]
    await insert_rows(db, Review, rows)
    return products


async def _newest_ids(
    db: Database, model: Any, parent: str, parent_id: int, *where: ColumnElement[bool]
) -> list[int]:
    """The ids of `parent_id`'s rows, newest first: the answer a per-parent query gives."""
    table = model.__table__
    statement = (
        select(table.c.id)
        .where(table.c[parent] == parent_id, *where)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
    )
    async with db.sessionmaker() as session:
        return list((await session.execute(statement)).scalars())


def _check(page: Page[Any], expected: list[int], first: int, *, after: bool = False) -> None:
    assert [item.id for item in page.items] == expected[:first]
    assert page.has_next_page == (len(expected) > first)
    assert page.has_previous_page == after
    assert page.sort == NEWEST


@pytest.mark.parametrize("n", [5, 20])
async def test_each_product_gets_its_own_newest_reviews(
    db: Database, loaders: Loaders, n: int
) -> None:
    products = await _reviewed_products(db, n)
    expected = {p: await _newest_ids(db, Review, "product_id", p) for p in products}
    args = PageArgs(first=3)
    keys = [*reversed(products), MISSING]
    db.statements.clear()

    pages = await asyncio.gather(
        *(loaders.reviews_page_by_product_id.load((key, args)) for key in keys)
    )

    assert len(db.statements) == 1
    for key, page in zip(keys, pages, strict=True):
        _check(page, expected.get(key, []), 3)
        assert all(review.product_id == key for review in page.items)
    assert any(page.has_next_page for page in pages)


@pytest.mark.parametrize("first", [1, 2, 4])
async def test_after_cursor_continues_inside_each_product(
    db: Database, dialect: Any, db_loaders: Any, first: int
) -> None:
    products = await _reviewed_products(db, 10)
    expected = {p: await _newest_ids(db, Review, "product_id", p) for p in products}
    walked: dict[int, list[int]] = {p: [] for p in products}
    after: dict[int, Any] = dict.fromkeys(products)
    pending = list(products)

    while pending:
        loaders = db_loaders()
        keys = [(p, PageArgs(first=first, after=after[p])) for p in pending]
        db.statements.clear()
        pages = await loaders.reviews_page_by_product_id.load_many(keys)
        assert len(db.statements) == len({args for _, args in keys})
        still = []
        for (p, args), page in zip(keys, pages, strict=True):
            assert page.has_previous_page == (args.after is not None)
            walked[p].extend(item.id for item in page.items)
            if page.has_next_page:
                assert len(page.items) == first
                after[p] = NEWEST.decode(page.cursor(page.items[-1]))
                still.append(p)
        pending = still

    assert walked == expected


async def test_same_cursor_for_many_products_is_one_statement(
    db: Database, loaders: Loaders
) -> None:
    products = await _reviewed_products(db, 14)
    # A position between the tied timestamps: every product continues after it.
    position = (at(1), 10**6)
    at_or_before = Review.__table__.c.created_at <= at(1)
    expected = {p: await _newest_ids(db, Review, "product_id", p, at_or_before) for p in products}
    args = PageArgs(first=2, after=position)
    db.statements.clear()

    pages = await loaders.reviews_page_by_product_id.load_many([(p, args) for p in products])

    assert len(db.statements) == 1
    for p, page in zip(products, pages, strict=True):
        _check(page, expected[p], 2, after=True)


async def test_first_zero_returns_empty_pages_that_know_about_more(
    db: Database, loaders: Loaders
) -> None:
    products = await _reviewed_products(db, 5)
    args = PageArgs(first=0)
    db.statements.clear()

    pages = await loaders.reviews_page_by_product_id.load_many([(p, args) for p in products])

    assert len(db.statements) == 1
    assert [page.items for page in pages] == [[]] * 5
    assert [page.has_next_page for page in pages] == [i % 7 > 0 for i in range(5)]


async def test_keys_with_different_args_get_one_statement_each(
    db: Database, loaders: Loaders
) -> None:
    products = await _reviewed_products(db, 7)
    expected = {p: await _newest_ids(db, Review, "product_id", p) for p in products}
    keys = [(p, PageArgs(first=1 + i % 2)) for i, p in enumerate(products)]
    db.statements.clear()

    pages = await loaders.reviews_page_by_product_id.load_many(keys)

    assert len(db.statements) == 2
    for (p, args), page in zip(keys, pages, strict=True):
        _check(page, expected[p], args.first)


async def test_postgresql_sql_text_does_not_depend_on_key_count(
    db: Database, db_loaders: Any, dialect: Any
) -> None:
    products = await _reviewed_products(db, 30)
    args = PageArgs(first=2)
    db.statements.clear()

    await db_loaders().reviews_page_by_product_id.load_many([(p, args) for p in products[:3]])
    await db_loaders().reviews_page_by_product_id.load_many([(p, args) for p in products])

    first, second = db.statements
    if dialect == "postgresql":
        assert first == second
    else:
        assert first != second  # SQLite expands IN per key count, by design


@pytest.mark.parametrize("n", [5, 20])
async def test_reviews_page_by_user_id(db: Database, loaders: Loaders, n: int) -> None:
    users = await _users(db, n)
    products = await _products(db, 6)
    rows = [
        {
            "product_id": products[j],
            "user_id": u,
            "rating": 4,
            "body": "",
            "created_at": at((i * j) % 4),
        }
        for i, u in enumerate(users)
        for j in range(i % 6)
    ]
    await insert_rows(db, Review, rows)
    expected = {u: await _newest_ids(db, Review, "user_id", u) for u in users}
    args = PageArgs(first=2)
    keys = [*users, MISSING]
    db.statements.clear()

    pages = await loaders.reviews_page_by_user_id.load_many([(u, args) for u in keys])

    assert len(db.statements) == 1
    for u, page in zip(keys, pages, strict=True):
        _check(page, expected.get(u, []), 2)


async def _users_with_orders(db: Database, n: int) -> list[int]:
    users = await _users(db, n)
    rows = [
        {
            "user_id": u,
            "status": STATUSES[(i + j) % 3],
            "total_cents": 0,
            "created_at": at((i + j) % 4),
        }
        for i, u in enumerate(users)
        for j in range(2 + i % 8)
    ]
    await insert_rows(db, Order, rows)
    return users


@pytest.mark.parametrize("n", [5, 20])
@pytest.mark.parametrize("status", [None, "paid"])
async def test_orders_page_by_user_id(
    db: Database, loaders: Loaders, n: int, status: str | None
) -> None:
    users = await _users_with_orders(db, n)
    where = [] if status is None else [Order.__table__.c.status == status]
    expected = {u: await _newest_ids(db, Order, "user_id", u, *where) for u in users}
    args = PageArgs(first=1)
    keys = [*users, MISSING]
    db.statements.clear()

    pages = await asyncio.gather(
        *(loaders.orders_page_by_user_id.load((u, status, args)) for u in keys)
    )

    assert len(db.statements) == 1
    for u, page in zip(keys, pages, strict=True):
        _check(page, expected.get(u, []), 1)
        assert all(status in (None, order.status) for order in page.items)
    assert any(page.has_next_page for page in pages)


async def test_orders_of_any_status_and_of_one_status_in_one_batch(
    db: Database, loaders: Loaders
) -> None:
    users = await _users_with_orders(db, 8)
    paid = Order.__table__.c.status == "paid"
    args = PageArgs(first=3)
    keys = [(u, status, args) for u in users for status in (None, "paid")]
    db.statements.clear()

    pages = await loaders.orders_page_by_user_id.load_many(keys)

    assert len(db.statements) == 2
    for (u, status, _), page in zip(keys, pages, strict=True):
        where = [] if status is None else [paid]
        _check(page, await _newest_ids(db, Order, "user_id", u, *where), 3)


@pytest.mark.parametrize("n", [5, 20])
async def test_products_page_by_category_id_lists_active_products(
    db: Database, loaders: Loaders, n: int
) -> None:
    categories = await insert_rows(db, Category, [{"name": f"c{i}"} for i in range(n)])
    rows = [
        {
            "sku": f"K{i}-{j}",
            "name": "p",
            "price_cents": 1,
            "category_id": c,
            "active": j % 3 != 1,
            "created_at": at((i + j) % 5),
            "updated_at": at(0),
        }
        for i, c in enumerate(categories)
        for j in range(i % 9)
    ]
    await insert_rows(db, Product, rows)
    active = Product.__table__.c.active.is_(True)
    expected = {c: await _newest_ids(db, Product, "category_id", c, active) for c in categories}
    args = PageArgs(first=3)
    keys = [*categories, MISSING]
    db.statements.clear()

    pages = await loaders.products_page_by_category_id.load_many([(c, args) for c in keys])

    assert len(db.statements) == 1
    for c, page in zip(keys, pages, strict=True):
        _check(page, expected.get(c, []), 3)
        assert all(product.active for product in page.items)
