"""Deterministic demo and benchmark data: `await seed(engine=engine, scale="medium")`.

The same scale gives the same rows on every run and machine: each table draws
from its own `random.Random` with a fixed seed, using only `random()` (the one
method whose sequence Python guarantees across versions), and timestamps come
from a fixed calendar, never the clock. Rows are generated as streams and
loaded in chunks: COPY on PostgreSQL, executemany on SQLite.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Table, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import Base

Row = tuple[Any, ...]
Progress = Callable[[str, int, int], None]


class SeedError(Exception):
    """The database cannot be seeded as asked (not empty, unknown scale)."""


@dataclass(frozen=True, slots=True)
class Scale:
    users: int
    categories: int
    products: int
    orders: int
    reviews: int


# database.md; order items follow from orders (1..7 per order, 4 on average).
SCALES = {
    "small": Scale(users=200, categories=20, products=300, orders=2_000, reviews=1_000),
    "medium": Scale(users=10_000, categories=50, products=5_000, orders=100_000, reviews=50_000),
    "large": Scale(
        users=100_000, categories=200, products=50_000, orders=1_000_000, reviews=500_000
    ),
}

SEED = 20261123
CHUNK = 10_000
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=3 * 365)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COLUMNS = {
    "users": _words("id email name avatar_url role created_at"),
    "categories": _words("id name parent_id"),
    "products": _words(
        "id sku name description price_cents category_id active created_at updated_at"
    ),
    "orders": _words("id user_id status total_cents created_at"),
    "order_items": _words("id order_id product_id quantity unit_price_cents"),
    "reviews": _words("id product_id user_id rating body created_at"),
}
CHECKED_TABLES = ("users", "products", "categories", "orders")

ADMIN_ID, CUSTOMER_ID = 1, 2
AVATAR_URL = "https://avatars.example.com/u/{}.png"
DEMO_USERS = {
    ADMIN_ID: ("admin@example.com", "Demo Admin", "admin", None),
    CUSTOMER_ID: ("customer@example.com", "Demo Customer", "customer", AVATAR_URL.format(2)),
}
# The demo customer's orders, newest first: every state, and PAID ones for the
# README's viewer example (tests/test_readme.py runs it against this data).
DEMO_ORDER_STATUSES = (
    "pending",
    "paid",
    "shipped",
    "completed",
    "paid",
    "cancelled",
    "completed",
)
DEMO_REVIEWS = 4

FIRST_NAMES = _words(
    "Ada Alan Anna Ben Carla Chen David Elena Emil Fatima Grace Hana Ivan Jamal Julia Kofi "
    "Lars Leila Marco Maya Nina Omar Priya Quinn Rosa Sam Sofia Tariq Uma Yuki"
)
LAST_NAMES = _words(
    "Abe Berg Costa Diaz Evans Fischer Garcia Haddad Ito Jensen Kim Lopez Mensah Novak "
    "Okafor Patel Quist Rossi Silva Tanaka Umar Varga Weber Xu Young Zhang"
)
DEPARTMENTS = _words(
    "Kitchen Garden Office Outdoor Audio Lighting Bath Bedding Toys Books Music Games Pets "
    "Baby Fitness Cycling Camping Travel Bags Shoes Watches Jewelry Beauty Health Tools "
    "Automotive Art Crafts Party Storage Cleaning Coffee Tea Snacks Phones Computers Cameras "
    "Gardenware Furniture Decor"
)
SUBCATEGORIES = _words("Essentials Accessories Premium Classics Basics Sets Spares Gifts")
ADJECTIVES = _words(
    "Compact Classic Ergonomic Rugged Sleek Handmade Smart Vintage Modular Deluxe Portable "
    "Quiet Sturdy Featherweight Everyday Pro"
)
MATERIALS = _words("Oak Steel Cotton Linen Bamboo Ceramic Copper Wool Glass Leather Granite Cork")
NOUNS = _words(
    "Chair Lamp Kettle Backpack Speaker Mug Blanket Clock Notebook Bottle Board Tray Jacket "
    "Planter Headphones Shelf"
)
PRICES = (199, 499, 799, 999, 1299, 1499, 1999, 2499, 2999, 3999, 4999, 7999, 9999, 14999, 29999)
# Cumulative weights: most orders are completed.
STATUSES = (
    (0.76, "completed"),
    (0.83, "shipped"),
    (0.88, "paid"),
    (0.93, "pending"),
    (1.0, "cancelled"),
)
RATINGS = ((0.05, 1), (0.12, 2), (0.27, 3), (0.60, 4), (1.0, 5))
REVIEW_BODIES = {
    1: ("Broke within a week.", "Not as described.", "Would not buy again."),
    2: ("Disappointing quality.", "Works, barely.", "Expected more for the price."),
    3: ("It does the job.", "Average, nothing special.", "Fine, but shipping was slow."),
    4: ("Very good value.", "Solid and well made.", "Happy with it; minor quirks."),
    5: ("Excellent, highly recommended!", "Exactly what I needed.", "Bought a second one."),
}


def _pick(rng: random.Random, seq: tuple[str, ...] | list[str]) -> str:
    return seq[int(rng.random() * len(seq))]


def _weighted(rng: random.Random, cumulative: tuple[tuple[float, Any], ...]) -> Any:
    r = rng.random()
    for bound, value in cumulative:
        if r < bound:
            return value
    return cumulative[-1][1]


class Timeline:
    """`n` things created one after another, evenly spread over [start, end)."""

    def __init__(self, start: datetime, end: datetime, n: int) -> None:
        self.start = start
        self.n = n
        self.step = (end - start).total_seconds() / n

    def at(self, i: int, rng: random.Random) -> datetime:
        """When thing `i` (0-based) was created: somewhere inside its own slot."""
        return self.start + timedelta(seconds=int((i + rng.random()) * self.step))

    def created_by(self, when: datetime) -> int:
        """How many things certainly existed at `when` (their slots had ended)."""
        return max(0, min(self.n, int((when - self.start).total_seconds() / self.step)))


class Dataset:
    """The row streams of one scale; each table has its own random generator."""

    def __init__(self, scale: Scale) -> None:
        self.scale = scale
        self.users = Timeline(START - timedelta(days=60), END - timedelta(days=30), scale.users)
        self.products = Timeline(
            START - timedelta(days=180), END - timedelta(days=60), scale.products
        )
        self.orders = Timeline(START, END, scale.orders)
        self.reviews = Timeline(START + timedelta(days=30), END, scale.reviews)
        self.prices: list[int] = []
        # Two levels: a fifth of the categories are roots, the rest their children.
        self.n_roots = max(1, scale.categories // 5)
        self.leaf_ids = range(self.n_roots + 1, scale.categories + 1)
        counts = random.Random(SEED + 4)
        # Items per order, drawn up front so the total is known before loading.
        self.item_counts = bytes(1 + int(counts.random() * 7) for _ in range(scale.orders))

    def _rng(self, stream: int) -> random.Random:
        return random.Random(SEED + stream)

    def user_rows(self) -> Iterator[Row]:
        rng = self._rng(1)
        for i in range(self.scale.users):
            user_id = i + 1
            created_at = self.users.at(i, rng)
            first, last = _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)
            role = "admin" if rng.random() < 0.004 else "customer"
            avatar = AVATAR_URL.format(user_id) if rng.random() < 0.8 else None
            if user_id in DEMO_USERS:
                email, name, role, avatar = DEMO_USERS[user_id]
            else:
                email, name = f"{first}.{last}.{user_id}@example.com".lower(), f"{first} {last}"
            yield (user_id, email, name, avatar, role, created_at)

    def category_rows(self) -> Iterator[Row]:
        for i in range(self.n_roots):
            yield (i + 1, DEPARTMENTS[i % len(DEPARTMENTS)], None)
        for j, category_id in enumerate(self.leaf_ids):
            parent = j % self.n_roots
            suffix = SUBCATEGORIES[(j // self.n_roots) % len(SUBCATEGORIES)]
            yield (category_id, f"{DEPARTMENTS[parent % len(DEPARTMENTS)]} {suffix}", parent + 1)

    def product_rows(self) -> Iterator[Row]:
        rng = self._rng(3)
        self.prices.clear()
        for i in range(self.scale.products):
            product_id = i + 1
            name = f"{_pick(rng, ADJECTIVES)} {_pick(rng, MATERIALS)} {_pick(rng, NOUNS)}"
            r = rng.random()
            price = PRICES[int(r * r * len(PRICES))]  # cheap things are more common
            self.prices.append(price)
            created_at = self.products.at(i, rng)
            updated_at = created_at
            if rng.random() < 0.5:
                age = (END - created_at).total_seconds()
                updated_at += timedelta(seconds=int(rng.random() * age))
            yield (
                product_id,
                f"SKU-{product_id:07d}",
                name,
                f"{name}, {_pick(rng, SUBCATEGORIES).lower()} line. Ships in 1-3 days.",
                price,
                self.leaf_ids[int(rng.random() * len(self.leaf_ids))],
                rng.random() >= 0.05,
                created_at,
                updated_at,
            )

    def order_rows(self) -> Iterator[tuple[Row, list[Row]]]:
        """Each order with its items (the prices come from product_rows, run first)."""
        rng = self._rng(5)
        n = self.scale.orders
        gap = max(1, n // (2 * len(DEMO_ORDER_STATUSES)))
        demo = {n - 1 - k * gap: status for k, status in enumerate(DEMO_ORDER_STATUSES)}
        item_id = 0
        for i in range(n):
            order_id = i + 1
            created_at = self.orders.at(i, rng)
            customers = max(3, self.users.created_by(created_at))
            user_id = 3 + int(rng.random() * (customers - 2))
            status = _weighted(rng, STATUSES)
            if i in demo:
                user_id, status = CUSTOMER_ID, demo[i]
            products = max(20, self.products.created_by(created_at))
            chosen: set[int] = set()
            items: list[Row] = []
            total = 0
            while len(items) < self.item_counts[i]:
                product_id = 1 + int(rng.random() * products)
                if product_id in chosen:
                    continue
                chosen.add(product_id)
                r = rng.random()
                quantity = 1 if r < 0.7 else 2 if r < 0.9 else 3 if r < 0.97 else 4
                price = self.prices[product_id - 1]
                total += quantity * price
                item_id += 1
                items.append((item_id, order_id, product_id, quantity, price))
            yield (order_id, user_id, status, total, created_at), items

    def review_rows(self) -> Iterator[Row]:
        rng = self._rng(6)
        n = self.scale.reviews
        gap = max(1, n // (2 * DEMO_REVIEWS))
        demo = {n - 1 - k * gap for k in range(DEMO_REVIEWS)}
        seen: set[int] = set()  # product_id * stride + user_id: far smaller than tuples
        stride = self.scale.users + 1
        for i in range(n):
            created_at = self.reviews.at(i, rng)
            users = max(3, self.users.created_by(created_at))
            products = max(20, self.products.created_by(created_at))
            while True:
                user_id = CUSTOMER_ID if i in demo else 3 + int(rng.random() * (users - 2))
                product_id = 1 + int(rng.random() * products)
                if product_id * stride + user_id not in seen:
                    break
            seen.add(product_id * stride + user_id)
            rating = _weighted(rng, RATINGS)
            body = _pick(rng, REVIEW_BODIES[rating])
            yield (i + 1, product_id, user_id, rating, body, created_at)


def _chunks(rows: Iterator[Row], size: int = CHUNK) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


class Loader:
    """Writes chunks of rows into one transaction, reporting progress as they land."""

    def __init__(self, conn: AsyncConnection, progress: Progress | None) -> None:
        self.conn = conn
        self.progress = progress
        self.postgres = conn.dialect.name == "postgresql"
        self.done: dict[str, int] = {}

    async def write(self, table: str, rows: list[Row], total: int) -> None:
        if not rows:
            return
        columns = COLUMNS[table]
        if self.postgres:
            raw = await self.conn.get_raw_connection()
            driver = raw.driver_connection  # the asyncpg connection, inside our transaction
            assert driver is not None
            await driver.copy_records_to_table(table, records=rows, columns=columns)
        else:
            statement = insert(Base.metadata.tables[table])
            await self.conn.execute(
                statement, [dict(zip(columns, row, strict=True)) for row in rows]
            )
        self.done[table] = self.done.get(table, 0) + len(rows)
        if self.progress is not None:
            self.progress(table, self.done[table], total)

    async def stream(self, table: str, rows: Iterator[Row], total: int) -> None:
        for chunk in _chunks(rows):
            await self.write(table, chunk, total)


async def _row_counts(conn: AsyncConnection, tables: tuple[str, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in tables:
        table: Table = Base.metadata.tables[name]
        counts[name] = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
    return counts


async def _table_names(conn: AsyncConnection) -> set[str]:
    return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _wipe(conn: AsyncConnection, existing: set[str]) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in existing]
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        return
    for name in tables:
        await conn.execute(text(f"DELETE FROM {name}"))
    sequences = text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
    if (await conn.execute(sequences)).scalar_one():
        await conn.execute(text("DELETE FROM sqlite_sequence"))


async def _after_load(conn: AsyncConnection) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite continues after the largest id by itself
    for name in COLUMNS:
        # Explicit ids bypassed the sequences: move each past the largest id.
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
            )
        )
    # Fresh statistics, so the planner picks the indexes right after loading.
    await conn.execute(text(f"ANALYZE {', '.join(COLUMNS)}"))


async def seed(
    *,
    engine: AsyncEngine,
    scale: str,
    reset: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Fill an empty, migrated database with the rows of `scale`; return the row counts.

    Raises SeedError if the database already holds data, unless `reset` is true:
    then every table is emptied first. Everything happens in one transaction.
    """
    if scale not in SCALES:
        raise SeedError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    data = Dataset(SCALES[scale])
    async with engine.begin() as conn:
        # The first statement also opens the transaction that COPY then joins.
        existing = await _table_names(conn)
        if missing := [table for table in COLUMNS if table not in existing]:
            raise SeedError(f"no tables {', '.join(missing)}: run the migrations first")
        counts = await _row_counts(conn, CHECKED_TABLES)
        if any(counts.values()) and not reset:
            found = ", ".join(f"{n} {table}" for table, n in counts.items())
            raise SeedError(f"database is not empty: {found}; pass --reset to wipe it")
        if reset:
            await _wipe(conn, existing)

        load = Loader(conn, progress)
        await load.stream("users", data.user_rows(), data.scale.users)
        await load.stream("categories", data.category_rows(), data.scale.categories)
        await load.stream("products", data.product_rows(), data.scale.products)
        n_items = sum(data.item_counts)
        orders = data.order_rows()
        while chunk := list(islice(orders, CHUNK)):
            await load.write("orders", [order for order, _ in chunk], data.scale.orders)
            await load.write("order_items", [i for _, items in chunk for i in items], n_items)
        await load.stream("reviews", data.review_rows(), data.scale.reviews)
        await _after_load(conn)
    return {table: load.done.get(table, 0) for table in COLUMNS}
