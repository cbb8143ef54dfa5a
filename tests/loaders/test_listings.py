from __future__ import annotations

import hashlib
from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from loaders import (
    BY_NAME,
    NEWEST,
    PRICE_ASC,
    PRICE_DESC,
    OrderQuery,
    PageArgs,
    ProductQuery,
    Sort,
    listings,
)
from models import ApiToken, Category, Order, Product, User
from tests.conftest import Database
from tests.factories import at
from tests.loaders.conftest import insert_rows

# (name, price_cents, active): ties in every sort value, and characters LIKE treats specially.
PRODUCTS = [
    ("delta", 500, True),
    ("alpha", 300, True),
    ("charlie", 500, True),
    ("alpha", 100, True),
    ("bravo", 300, False),
    ("echo", 500, True),
    ("bravo", 300, True),
    ("alpha", 500, True),
    ("100% cotton", 700, True),
    ("100 cotton", 700, True),
    ("a_b", 200, True),
    ("axb", 200, False),
    ("Mixed ALPHA case", 900, True),
    ("back\\slash", 50, True),
]
SORTS = [NEWEST, PRICE_ASC, PRICE_DESC, BY_NAME]


async def _catalog(db: Database) -> tuple[list[int], list[dict[str, Any]]]:
    categories = await insert_rows(db, Category, [{"name": "one"}, {"name": "two"}])
    rows = [
        {
            "sku": f"L{i}",
            "name": name,
            "price_cents": price,
            "active": active,
            "category_id": categories[i % 2],
            # Four products share each timestamp.
            "created_at": at(i // 4),
            "updated_at": at(0),
        }
        for i, (name, price, active) in enumerate(PRODUCTS)
    ]
    ids = await insert_rows(db, Product, rows)
    return categories, [{"id": id_, **row} for id_, row in zip(ids, rows, strict=True)]


async def _sorted_product_ids(db: Database, sort: Sort, active: bool | None) -> list[int]:
    """Every product in `sort` order, from one plain ORDER BY: the walk must match it."""
    c = Product.__table__.c
    column = c[sort.column]
    order = (column.desc(), c.id.desc()) if sort.descending else (column.asc(), c.id.asc())
    statement = select(c.id).order_by(*order)
    if active is not None:
        statement = statement.where(c.active == active)
    async with db.sessionmaker() as session:
        return list((await session.execute(statement)).scalars())


async def _walk_products(
    db: Database, dialect: Any, query: ProductQuery, sort: Sort, first: int
) -> list[int]:
    ids: list[int] = []
    cursor: str | None = None
    while True:
        args = PageArgs(first=first, after=None if cursor is None else sort.decode(cursor))
        db.statements.clear()
        page = await listings.products_page(
            sessionmaker=db.sessionmaker, dialect=dialect, query=query, sort=sort, args=args
        )
        assert len(db.statements) == 1
        assert page.has_previous_page == (cursor is not None)
        assert page.sort == sort
        ids.extend(p.id for p in page.items)
        if not page.has_next_page:
            assert len(page.items) <= first
            return ids
        assert len(page.items) == first
        cursor = page.cursor(page.items[-1])


@pytest.mark.parametrize("first", [1, 3, 4])
@pytest.mark.parametrize("sort", SORTS, ids=[s.name for s in SORTS])
@pytest.mark.parametrize("active", [True, None])
async def test_products_walk_every_sort_without_gaps_or_duplicates(
    db: Database, dialect: Any, sort: Sort, first: int, active: bool | None
) -> None:
    await _catalog(db)
    expected = await _sorted_product_ids(db, sort, active)

    walked = await _walk_products(db, dialect, ProductQuery(active=active), sort, first)

    assert walked == expected
    assert len(set(walked)) == len(walked)


@pytest.mark.parametrize("sort", SORTS, ids=[s.name for s in SORTS])
async def test_a_search_walks_every_sort_in_order(db: Database, dialect: Any, sort: Sort) -> None:
    """On PostgreSQL a search page is a CTE of the matches, sorted after: same pages."""
    _, rows = await _catalog(db)
    names = {row["id"]: row["name"] for row in rows}
    expected = [i for i in await _sorted_product_ids(db, sort, None) if "a" in names[i].lower()]
    assert 1 < len(expected) < len(rows)

    walked = await _walk_products(db, dialect, ProductQuery(search="A", active=None), sort, 2)

    assert walked == expected


def _matching(rows: list[dict[str, Any]], query: ProductQuery) -> set[int]:
    def keep(row: dict[str, Any]) -> bool:
        return (
            (query.category_id is None or row["category_id"] == query.category_id)
            and (query.search is None or query.search.lower() in row["name"].lower())
            and (query.min_price_cents is None or row["price_cents"] >= query.min_price_cents)
            and (query.max_price_cents is None or row["price_cents"] <= query.max_price_cents)
            and (query.active is None or row["active"] == query.active)
        )

    return {row["id"] for row in rows if keep(row)}


QUERIES = {
    "default-active": lambda cats: ProductQuery(),
    "inactive": lambda cats: ProductQuery(active=False),
    "both": lambda cats: ProductQuery(active=None),
    "category": lambda cats: ProductQuery(category_id=cats[1], active=None),
    "category-active": lambda cats: ProductQuery(category_id=cats[0]),
    "search-ci": lambda cats: ProductQuery(search="ALPHA"),
    "search-percent": lambda cats: ProductQuery(search="%"),
    "search-underscore": lambda cats: ProductQuery(search="_", active=None),
    "search-backslash": lambda cats: ProductQuery(search="\\"),
    "search-nothing": lambda cats: ProductQuery(search="zzz"),
    "prices-inclusive": lambda cats: ProductQuery(min_price_cents=200, max_price_cents=500),
    "everything": lambda cats: ProductQuery(
        category_id=cats[0], search="a", min_price_cents=100, max_price_cents=500, active=None
    ),
}


@pytest.mark.parametrize("name", QUERIES)
async def test_products_filters_and_count(db: Database, dialect: Any, name: str) -> None:
    categories, rows = await _catalog(db)
    query = QUERIES[name](categories)
    expected = _matching(rows, query)

    walked = await _walk_products(db, dialect, query, NEWEST, 3)
    db.statements.clear()
    count = await listings.products_count(
        sessionmaker=db.sessionmaker, dialect=dialect, query=query
    )

    assert len(db.statements) == 1
    assert set(walked) == expected
    assert len(walked) == len(expected) == count
    if name.startswith("search-") and name != "search-nothing":
        assert expected  # the case is exercised, not vacuous


async def test_products_search_takes_like_characters_literally(db: Database, dialect: Any) -> None:
    _, rows = await _catalog(db)
    by_id = {row["id"]: row["name"] for row in rows}

    async def names(search: str) -> set[str]:
        page = await listings.products_page(
            sessionmaker=db.sessionmaker,
            dialect=dialect,
            query=ProductQuery(search=search, active=None),
            sort=NEWEST,
            args=PageArgs(first=100),
        )
        return {by_id[p.id] for p in page.items}

    assert await names("0%") == {"100% cotton"}
    assert await names("a_b") == {"a_b"}
    assert await names("k\\s") == {"back\\slash"}
    assert await names("alpha") == {"alpha", "Mixed ALPHA case"}


async def test_users_page_newest_first_and_count(db: Database) -> None:
    ids = await insert_rows(
        db,
        User,
        [
            {"email": f"l{i}@example.com", "name": f"l{i}", "created_at": at(i // 3)}
            for i in range(10)
        ],
    )
    expected = sorted(ids, key=lambda id_: (ids.index(id_) // 3, id_), reverse=True)
    walked: list[int] = []
    after = None
    while True:
        db.statements.clear()
        page = await listings.users_page(
            sessionmaker=db.sessionmaker, args=PageArgs(first=4, after=after)
        )
        assert len(db.statements) == 1
        assert page.has_previous_page == (after is not None)
        walked.extend(u.id for u in page.items)
        if not page.has_next_page:
            break
        after = NEWEST.decode(page.cursor(page.items[-1]))

    assert walked == expected
    db.statements.clear()
    assert await listings.users_count(sessionmaker=db.sessionmaker) == 10
    assert len(db.statements) == 1


async def _orders(db: Database) -> tuple[list[int], list[dict[str, Any]]]:
    users = await insert_rows(
        db,
        User,
        [{"email": f"o{i}@example.com", "name": "o", "created_at": at(0)} for i in range(3)],
    )
    statuses = ("pending", "paid", "completed")
    rows = [
        {
            "user_id": users[i % 3],
            "status": statuses[i % 4 % 3],
            "total_cents": i,
            "created_at": at(i // 2),
        }
        for i in range(18)
    ]
    ids = await insert_rows(db, Order, rows)
    return users, [{"id": id_, **row} for id_, row in zip(ids, rows, strict=True)]


ORDER_QUERIES = {
    "all": lambda users: OrderQuery(),
    "status": lambda users: OrderQuery(status="paid"),
    "user": lambda users: OrderQuery(user_id=users[1]),
    "after-inclusive": lambda users: OrderQuery(created_after=at(3)),
    "before-exclusive": lambda users: OrderQuery(created_before=at(3)),
    "range": lambda users: OrderQuery(created_after=at(2), created_before=at(6)),
    "everything": lambda users: OrderQuery(
        status="pending", user_id=users[0], created_after=at(0), created_before=at(9)
    ),
}


@pytest.mark.parametrize("name", ORDER_QUERIES)
async def test_orders_page_filters_newest_first_and_count(
    db: Database, dialect: Any, name: str
) -> None:
    users, rows = await _orders(db)
    query = ORDER_QUERIES[name](users)
    matching = [
        row
        for row in rows
        if (query.status is None or row["status"] == query.status)
        and (query.user_id is None or row["user_id"] == query.user_id)
        and (query.created_after is None or row["created_at"] >= query.created_after)
        and (query.created_before is None or row["created_at"] < query.created_before)
    ]
    expected = [r["id"] for r in sorted(matching, key=lambda r: (r["created_at"], r["id"]))][::-1]
    walked: list[int] = []
    after = None
    while True:
        db.statements.clear()
        page = await listings.orders_page(
            sessionmaker=db.sessionmaker,
            dialect=dialect,
            query=query,
            args=PageArgs(first=3, after=after),
        )
        assert len(db.statements) == 1
        walked.extend(o.id for o in page.items)
        if not page.has_next_page:
            break
        after = NEWEST.decode(page.cursor(page.items[-1]))
    db.statements.clear()
    count = await listings.orders_count(sessionmaker=db.sessionmaker, dialect=dialect, query=query)

    assert len(db.statements) == 1
    assert walked == expected
    assert count == len(expected)
    assert expected


async def test_orders_filter_accepts_any_time_zone(db: Database, dialect: Any) -> None:
    await _orders(db)
    plus_two = timezone(timedelta(hours=2))
    query = OrderQuery(created_after=at(3).astimezone(plus_two))
    utc_count = await listings.orders_count(
        sessionmaker=db.sessionmaker, dialect=dialect, query=OrderQuery(created_after=at(3))
    )

    count = await listings.orders_count(sessionmaker=db.sessionmaker, dialect=dialect, query=query)

    assert count == utc_count > 0


async def test_all_categories_roots_first_then_name_then_id(db: Database) -> None:
    roots = await insert_rows(db, Category, [{"name": n} for n in ("mango", "apple", "mango")])
    children = await insert_rows(
        db,
        Category,
        [
            {"name": "zucchini", "parent_id": roots[1]},
            {"name": "banana", "parent_id": roots[0]},
            {"name": "banana", "parent_id": roots[2]},
        ],
    )
    db.statements.clear()

    categories = await listings.all_categories(sessionmaker=db.sessionmaker)

    assert len(db.statements) == 1
    assert [c.id for c in categories] == [
        roots[1],
        roots[0],
        roots[2],
        children[1],
        children[2],
        children[0],
    ]
    assert categories[3].parent_id == roots[0]


async def test_viewer_by_token_hash_ignores_revoked_and_unknown_tokens(db: Database) -> None:
    users = await insert_rows(
        db,
        User,
        [{"email": f"t{i}@example.com", "name": f"t{i}", "created_at": at(i)} for i in range(2)],
    )

    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    await insert_rows(
        db,
        ApiToken,
        [
            {"user_id": users[0], "token_hash": digest("live"), "created_at": at(1)},
            {
                "user_id": users[1],
                "token_hash": digest("revoked"),
                "created_at": at(1),
                "revoked_at": at(2),
            },
            {"user_id": users[1], "token_hash": digest("live-too"), "created_at": at(3)},
        ],
    )
    db.statements.clear()

    viewer = await listings.viewer_by_token_hash(
        sessionmaker=db.sessionmaker, token_hash=digest("live")
    )

    assert len(db.statements) == 1
    assert viewer is not None
    assert (viewer.id, viewer.email) == (users[0], "t0@example.com")
    for token in ("revoked", "unknown"):
        found = await listings.viewer_by_token_hash(
            sessionmaker=db.sessionmaker, token_hash=digest(token)
        )
        assert found is None
    other = await listings.viewer_by_token_hash(
        sessionmaker=db.sessionmaker, token_hash=digest("live-too")
    )
    assert other is not None
    assert other.id == users[1]
