"""The seed: exact scales, consistent rows, the same rows on every run, and no accidents."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import Base
from server.cli.migrate import upgrade
from server.cli.seed import SCALES, SeedError, seed
from server.database import create_engine
from server.settings import Settings
from tests.conftest import Database
from tests.factories import Factory
from tests.server.cli.test_migrations import scratch_database

SMALL = {
    "users": 200,
    "categories": 20,
    "products": 300,
    "orders": 2_000,
    "reviews": 1_000,
}
TABLES = ("users", "categories", "products", "orders", "order_items", "reviews")
Fresh = Callable[[str], Awaitable[AsyncEngine]]


@pytest_asyncio.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[Fresh]:
    """Makes engines on new, migrated databases of a backend."""
    async with AsyncExitStack() as stack:

        async def make(backend: str) -> AsyncEngine:
            url = await stack.enter_async_context(scratch_database(backend, tmp_path))
            await upgrade(url)
            engine = create_engine(Settings.from_env({"DATABASE_URL": url}))
            stack.push_async_callback(engine.dispose)
            return engine

        yield make


async def _scalar(conn: AsyncConnection, sql: str) -> Any:
    return (await conn.execute(text(sql))).scalar_one()


async def _checksum(engine: AsyncEngine) -> str:
    """A digest of every seeded row, read through the models' column types."""
    digest = hashlib.sha256()
    async with engine.connect() as conn:
        for name in TABLES:
            table = Base.metadata.tables[name]
            for row in await conn.execute(select(table).order_by(table.c.id)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


async def test_small_has_the_sizes_of_the_spec(db: Database) -> None:
    counts = await seed(engine=db.engine, scale="small")

    assert {table: counts[table] for table in SMALL} == SMALL
    assert 7_000 <= counts["order_items"] <= 9_000  # "about 8,000"
    async with db.engine.connect() as conn:
        for table in TABLES:
            assert await _scalar(conn, f"SELECT count(*) FROM {table}") == counts[table]


def test_scales_are_those_of_the_spec() -> None:
    assert {name: astuple(scale) for name, scale in SCALES.items()} == {
        "small": (200, 20, 300, 2_000, 1_000),
        "medium": (10_000, 50, 5_000, 100_000, 50_000),
        "large": (100_000, 200, 50_000, 1_000_000, 500_000),
    }


async def test_demo_accounts_come_first(db: Database) -> None:
    await seed(engine=db.engine, scale="small")

    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, email, name, role FROM users WHERE id <= 2"))
        assert sorted(rows) == [
            (1, "admin@example.com", "Demo Admin", "admin"),
            (2, "customer@example.com", "Demo Customer", "customer"),
        ]
        assert 3 <= await _scalar(conn, "SELECT count(*) FROM orders WHERE user_id = 2") <= 10
        # Every state, PAID twice: the README's viewer example lists PAID orders.
        statuses = await conn.execute(
            text("SELECT status, count(*) FROM orders WHERE user_id = 2 GROUP BY status")
        )
        assert dict(iter(statuses)) == {
            "pending": 1,
            "paid": 2,
            "shipped": 1,
            "completed": 2,
            "cancelled": 1,
        }
        assert 2 <= await _scalar(conn, "SELECT count(*) FROM reviews WHERE user_id = 2") <= 10
        assert await _scalar(conn, "SELECT count(*) FROM orders WHERE user_id = 1") == 0


async def test_rows_are_consistent(db: Database) -> None:
    await seed(engine=db.engine, scale="small")

    async with db.engine.connect() as conn:
        # Totals are the sum of the items, priced at the product's price.
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM orders o WHERE o.total_cents <> (
                     SELECT coalesce(sum(i.quantity * i.unit_price_cents), 0)
                     FROM order_items i WHERE i.order_id = o.id)""",
            )
            == 0
        )
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM order_items i JOIN products p ON p.id = i.product_id
                   WHERE i.unit_price_cents <> p.price_cents""",
            )
            == 0
        )
        # 1..7 distinct products per order.
        sizes = await conn.execute(
            text(
                """SELECT min(n), max(n), max(n - d) FROM (
                     SELECT count(*) AS n, count(DISTINCT product_id) AS d
                     FROM order_items GROUP BY order_id) AS per_order"""
            )
        )
        assert tuple(sizes.one()) == (1, 7, 0)
        assert (
            await _scalar(
                conn,
                "SELECT count(*) FROM orders WHERE id NOT IN (SELECT order_id FROM order_items)",
            )
            == 0
        )
        # Categories: two levels, products only in child categories.
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM categories c JOIN categories p ON p.id = c.parent_id
                   WHERE p.parent_id IS NOT NULL""",
            )
            == 0
        )
        assert await _scalar(conn, "SELECT count(*) FROM categories WHERE parent_id IS NULL") > 1
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id
                   WHERE c.parent_id IS NULL""",
            )
            == 0
        )
        # Mixed statuses, mostly completed.
        statuses = dict(
            tuple(row)
            for row in await conn.execute(
                text("SELECT status, count(*) FROM orders GROUP BY status")
            )
        )
        assert set(statuses) == {"pending", "paid", "shipped", "completed", "cancelled"}
        assert statuses["completed"] > sum(statuses.values()) / 2
        # Some inactive products (about 5%), some users without avatar.
        inactive = await _scalar(conn, "SELECT count(*) FROM products WHERE NOT active")
        assert 5 <= inactive <= 30
        assert await _scalar(conn, "SELECT count(*) FROM users WHERE avatar_url IS NULL") > 0
        # Reviews: one per user and product, rated 1..5.
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM (SELECT product_id, user_id FROM reviews
                   GROUP BY product_id, user_id HAVING count(*) > 1) AS twice""",
            )
            == 0
        )
        assert tuple(
            (await conn.execute(text("SELECT min(rating), max(rating) FROM reviews"))).one()
        ) == (1, 5)
        # Nothing happens before its user or product exists.
        assert (
            await _scalar(
                conn,
                """SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id
                   WHERE o.created_at < u.created_at""",
            )
            == 0
        )
        if db.backend == "sqlite":
            assert list(await conn.execute(text("PRAGMA foreign_key_check"))) == []


async def test_new_rows_get_ids_after_the_seeded_ones(db: Database, factory: Factory) -> None:
    await seed(engine=db.engine, scale="small")

    assert await factory.user() == SMALL["users"] + 1
    assert await factory.category() == SMALL["categories"] + 1


async def test_progress_reports_every_chunk_of_every_table(db: Database) -> None:
    calls: list[tuple[str, int, int]] = []

    counts = await seed(engine=db.engine, scale="small", progress=lambda *call: calls.append(call))

    assert [table for table, _, _ in calls] == [
        "users",
        "categories",
        "products",
        "orders",
        "order_items",
        "reviews",
    ]
    assert all(done == total == counts[table] for table, done, total in calls)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_every_run_gives_the_same_rows(backend: str, fresh: Fresh) -> None:
    first, second = await fresh(backend), await fresh(backend)

    await seed(engine=first, scale="small")
    await seed(engine=second, scale="small")

    assert await _checksum(first) == await _checksum(second)


async def test_both_backends_get_the_same_rows(fresh: Fresh) -> None:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL backend not configured")
    sqlite, postgresql = await fresh("sqlite"), await fresh("postgresql")

    await seed(engine=sqlite, scale="small")
    await seed(engine=postgresql, scale="small")

    assert await _checksum(sqlite) == await _checksum(postgresql)


async def test_a_database_with_data_is_refused(db: Database, factory: Factory) -> None:
    await factory.user()

    with pytest.raises(SeedError, match=r"not empty: 1 users, .*; pass --reset to wipe it"):
        await seed(engine=db.engine, scale="small")

    async with db.engine.connect() as conn:
        assert await _scalar(conn, "SELECT count(*) FROM users") == 1


async def test_reset_wipes_and_reseeds_identically(db: Database, factory: Factory) -> None:
    await seed(engine=db.engine, scale="small")
    seeded = await _checksum(db.engine)
    await factory.order(user_id=1, items=[(1, 2, 500)])

    with pytest.raises(SeedError, match="200 users"):
        await seed(engine=db.engine, scale="small")
    counts = await seed(engine=db.engine, scale="small", reset=True)

    assert counts["users"] == SMALL["users"]
    assert await _checksum(db.engine) == seeded


async def test_a_failed_seed_leaves_nothing_behind(db: Database) -> None:
    def fail_on_orders(table: str, done: int, total: int) -> None:
        if table == "orders":
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        await seed(engine=db.engine, scale="small", progress=fail_on_orders)

    async with db.engine.connect() as conn:
        for table in TABLES:
            assert await _scalar(conn, f"SELECT count(*) FROM {table}") == 0


async def test_unknown_scale_is_refused(db: Database) -> None:
    with pytest.raises(SeedError, match="unknown scale 'huge'"):
        await seed(engine=db.engine, scale="huge")


async def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    async with scratch_database("sqlite", tmp_path) as url:
        engine = create_engine(Settings.from_env({"DATABASE_URL": url}))
        try:
            with pytest.raises(SeedError, match="run the migrations first"):
                await seed(engine=engine, scale="small")
        finally:
            await engine.dispose()
