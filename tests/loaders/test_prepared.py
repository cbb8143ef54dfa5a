"""The lean read path (loaders/prepared.py): asyncpg's prepared statements and Records
instead of SQLAlchemy's execution and result layer, on PostgreSQL.

Both paths run over the same seeded data and must hand out identical records (compared
by `repr`, which also tells a float from a Decimal and shows every datetime's tzinfo).
On SQLite both sides go through SQLAlchemy: the loaders must work there unchanged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loaders import Dialect, Loaders, entities, listings, prepared
from loaders.batch import SessionMaker
from loaders.pagination import NEWEST, PageArgs
from schema.errors import is_database_unavailable
from server.database import create_engine, create_sessionmaker
from server.settings import Settings
from tests.conftest import Database
from tests.factories import Factory, at

Run = Callable[[SessionMaker], Awaitable[Any]]


def sqlalchemy_path(db: Database) -> SessionMaker:
    """A sessionmaker over the same pool whose reads go through SQLAlchemy's execution."""
    engine = db.engine.execution_options(**{prepared.LEAN_READS: False})
    return async_sessionmaker(engine, expire_on_commit=False)


async def seed(factory: Factory, rng: random.Random) -> dict[str, list[int]]:
    users = [
        await factory.user(avatar_url=rng.choice([None, "https://a.example/1.png"]))
        for _ in range(6)
    ]
    roots = [await factory.category() for _ in range(2)]
    categories = roots + [await factory.category(parent_id=rng.choice(roots)) for _ in range(3)]
    products = [
        await factory.product(
            category_id=rng.choice(categories),
            active=rng.random() < 0.8,
            name=rng.choice(["Shoe", "Red shoe", "100% wool", "a_b"]),
            created_at=at(rng.randrange(5)),  # ties: the keyset order falls back to id
        )
        for _ in range(14)
    ]
    orders = [
        await factory.order(
            user_id=rng.choice(users),
            status=rng.choice(["pending", "completed", "cancelled"]),
            items=[
                (rng.choice(products), rng.randint(1, 4), rng.randint(100, 5000))
                for _ in range(rng.randrange(4))
            ],
        )
        for _ in range(16)
    ]
    pairs = rng.sample([(user, product) for user in users for product in products], 24)
    reviews = [
        await factory.review(user_id=user, product_id=product, rating=rng.randint(1, 5))
        for user, product in pairs  # one review per user and product
    ]
    return {
        "users": users,
        "categories": categories,
        "products": products,
        "orders": orders,
        "reviews": reviews,
    }


def loader_runs(dialect: Dialect, ids: dict[str, list[int]], rng: random.Random) -> list[Run]:
    """Every loader of `Loaders` and every listing, with a random mix of present,
    missing and repeated keys."""

    def keys(kind: str) -> list[int]:
        pool = ids[kind] + [999_999]
        return [rng.choice(pool) for _ in range(rng.randint(1, 12))]

    def through(name: str, batch_keys: list[Any]) -> Run:
        async def run(sessionmaker: SessionMaker) -> Any:
            loader = getattr(Loaders(sessionmaker=sessionmaker, dialect=dialect), name)
            return await loader.load_many(batch_keys)

        return run

    def page() -> PageArgs:
        after = rng.choice([None, (at(rng.randrange(6)), rng.randrange(30))])
        return PageArgs(first=rng.randrange(4), after=after)

    status = ["pending", "completed", None]
    runs = [
        through("user_by_id", keys("users")),
        through("category_by_id", keys("categories")),
        through("product_by_id", keys("products")),
        through("product_by_sku", [f"SKU-{k}" for k in keys("products")] + ["nope"]),
        through("order_by_id", keys("orders")),
        through("review_by_id", keys("reviews")),
        through("items_by_order_id", keys("orders")),
        through("children_by_category_id", keys("categories")),
        through("review_stats_by_product_id", keys("products")),
        through("review_count_by_user_id", keys("users")),
        through("order_count_by_user_id", [(k, rng.choice(status)) for k in keys("users")]),
        through("active_product_count_by_category_id", keys("categories")),
        through("reviews_page_by_product_id", [(k, page()) for k in keys("products")]),
        through("reviews_page_by_user_id", [(k, page()) for k in keys("users")]),
        through("orders_page_by_user_id", [(k, rng.choice(status), page()) for k in keys("users")]),
        through("products_page_by_category_id", [(k, page()) for k in keys("categories")]),
    ]
    query = listings.ProductQuery(
        category_id=rng.choice([None, *ids["categories"]]),
        search=rng.choice([None, "shoe", "%", "_"]),
        min_price_cents=rng.choice([None, 1000]),
        active=rng.choice([True, False, None]),
    )
    orders = listings.OrderQuery(
        status=rng.choice(status),
        user_id=rng.choice([None, *ids["users"]]),
        created_after=rng.choice([None, at(0)]),
        created_before=rng.choice([None, at(10_000) + timedelta(days=1)]),
    )
    args = page()
    runs += [
        lambda s: listings.products_page(
            sessionmaker=s, dialect=dialect, query=query, sort=NEWEST, args=args
        ),
        lambda s: listings.products_count(sessionmaker=s, dialect=dialect, query=query),
        lambda s: listings.orders_page(sessionmaker=s, dialect=dialect, query=orders, args=args),
        lambda s: listings.orders_count(sessionmaker=s, dialect=dialect, query=orders),
        lambda s: listings.users_page(sessionmaker=s, args=args),
        lambda s: listings.users_count(sessionmaker=s),
        lambda s: listings.all_categories(sessionmaker=s),
        lambda s: listings.viewer_by_token_hash(sessionmaker=s, token_hash="unknown"),
    ]
    return runs


async def test_both_paths_hand_out_identical_records(
    db: Database, dialect: Dialect, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(12)
    ids = await seed(Factory(db.sessionmaker), rng)
    lean_fetches = 0
    fetch = prepared.fetch

    async def counted(*args: Any) -> Any:
        nonlocal lean_fetches
        lean_fetches += 1
        return await fetch(*args)

    monkeypatch.setattr(prepared, "fetch", counted)
    reference = sqlalchemy_path(db)

    runs = lean_statements = 0
    for _ in range(8):
        for run in loader_runs(dialect, ids, rng):
            before = len(db.statements)
            lean = await run(db.sessionmaker)
            lean_statements += len(db.statements) - before
            assert repr(lean) == repr(await run(reference))
            runs += 1

    assert runs == 8 * 24
    # Every statement of the loaders takes the lean path on PostgreSQL, none on SQLite;
    # the reference never does.
    assert lean_statements >= runs
    assert lean_fetches == (lean_statements if dialect == "postgresql" else 0)


@pytest.mark.parametrize("count", [1, 50])
async def test_one_sql_text_whatever_the_key_count(
    db: Database, dialect: Dialect, count: int
) -> None:
    loaders = Loaders(sessionmaker=db.sessionmaker, dialect=dialect)
    await loaders.product_by_id.load(1)
    first = db.statements[-1]
    await Loaders(sessionmaker=db.sessionmaker, dialect=dialect).product_by_id.load_many(
        list(range(2, 2 + count))
    )

    assert len(db.statements) == 2
    if dialect == "postgresql":
        assert db.statements[-1] == first
        assert "= ANY ($1::BIGINT[])" in first


@pytest.fixture
async def one_connection(db: Database) -> Any:
    """An engine whose pool holds one connection, so every read shares its statement cache."""
    if db.backend != "postgresql":
        pytest.skip("asyncpg's statement cache: PostgreSQL only")
    engine = create_engine(
        Settings.from_env({"DATABASE_URL": db.url, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    )
    yield engine
    await engine.dispose()


async def test_the_prepared_statement_is_reused_for_any_key_count(
    one_connection: AsyncEngine,
) -> None:
    sessionmaker = create_sessionmaker(one_connection)
    seen: list[str] = []
    event.listen(one_connection.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    for count in (1, 50, 7, 1):
        loaders = Loaders(sessionmaker=sessionmaker, dialect="postgresql")
        await loaders.items_by_order_id.load_many(list(range(count)))

    async with one_connection.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        prepared_count = await driver.fetchval(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", seen[0]
        )
    assert len(seen) == 4
    assert len(set(seen)) == 1
    assert prepared_count == 1


async def test_every_statement_fires_the_engine_events(db: Database, dialect: Dialect) -> None:
    """Statement counts, metrics and trace spans listen to these events."""
    events: list[tuple[str, str, object]] = []

    def before(_c: Any, _cur: Any, sql: str, _p: Any, context: object, _m: bool) -> None:
        events.append(("before", sql, context))

    def after(_c: Any, _cur: Any, sql: str, _p: Any, context: object, _m: bool) -> None:
        events.append(("after", sql, context))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        loaders = Loaders(sessionmaker=db.sessionmaker, dialect=dialect)
        await asyncio.gather(loaders.user_by_id.load(1), loaders.review_stats_by_product_id.load(1))
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)

    assert sorted(kind for kind, _, _ in events) == ["after", "after", "before", "before"]
    for kind, sql, context in events:
        # Each statement's before and after see one context object (a span lives on it).
        assert [k for k, s, c in events if c is context] == ["before", "after"], kind
        assert [s for _, s, c in events if c is context] == [sql, sql]


async def hold_lock(db: Database, release: asyncio.Event, locked: asyncio.Event) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("LOCK TABLE products IN ACCESS EXCLUSIVE MODE"))
        locked.set()
        await release.wait()


async def blocked_load(db: Database, sessionmaker: SessionMaker) -> tuple[asyncio.Task[Any], Any]:
    """A product batch waiting behind a lock; the lock's holder (told to release it) and
    the waiting backend's pid."""
    release, locked = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold_lock(db, release, locked))
    await locked.wait()
    # The batch function itself: a loader's shared future would shield it from a cancel.
    load = asyncio.create_task(
        entities.product_by_id([1], sessionmaker=sessionmaker, dialect="postgresql")
    )
    async with db.engine.connect() as connection:
        for _ in range(1500):  # up to 30 s: a loaded machine is slow to start the batch
            # pg_stat_activity is a snapshot kept for the whole transaction: drop it.
            await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            waiting = await connection.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
            if waiting is not None:
                break
            await asyncio.sleep(0.02)
    assert waiting is not None, f"the batch never waited on the lock: {load}"
    release.set()  # set now; the holder only commits when awaited
    return load, (holder, waiting)


def postgres_only(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("asyncpg's error paths: PostgreSQL only")


async def test_a_statement_timeout_is_the_query_s_fault(db: Database, factory: Factory) -> None:
    postgres_only(db)
    engine = create_engine(Settings.from_env({"DATABASE_URL": db.url}))

    @event.listens_for(engine.sync_engine, "do_connect")
    def short_timeout(_d: Any, _r: Any, _a: Any, params: dict[str, Any]) -> None:
        params["server_settings"] = {"statement_timeout": "100"}

    try:
        release, locked = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(hold_lock(db, release, locked))
        await locked.wait()
        loaders = Loaders(sessionmaker=create_sessionmaker(engine), dialect="postgresql")
        with pytest.raises(DBAPIError) as raised:
            await loaders.product_by_id.load(1)
        release.set()
        await holder
    finally:
        await engine.dispose()

    assert getattr(raised.value.orig, "sqlstate", None) == "57014"
    assert not raised.value.connection_invalidated
    assert not is_database_unavailable(raised.value)


async def test_a_killed_connection_is_unavailable_and_invalidated(db: Database) -> None:
    postgres_only(db)
    engine = create_engine(Settings.from_env({"DATABASE_URL": db.url}))
    sessionmaker = create_sessionmaker(engine)
    try:
        load, (holder, pid) = await blocked_load(db, sessionmaker)
        async with db.engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await holder
        with pytest.raises(DBAPIError) as raised:
            await load
        # The pool dropped the dead connection: the next load gets a live one.
        fresh = Loaders(sessionmaker=sessionmaker, dialect="postgresql")
        assert await fresh.product_by_id.load(1) is None
    finally:
        await engine.dispose()

    assert raised.value.connection_invalidated
    assert is_database_unavailable(raised.value)


async def test_a_cancelled_load_leaves_no_busy_connection_in_the_pool(db: Database) -> None:
    postgres_only(db)
    engine = create_engine(
        Settings.from_env({"DATABASE_URL": db.url, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    )
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    try:
        load, (holder, _pid) = await blocked_load(db, sessionmaker)
        load.cancel()
        with pytest.raises(asyncio.CancelledError):
            await load
        await holder
        # Returned mid-statement, asyncpg's connection would refuse the next one
        # ("another operation is in progress"): it was invalidated instead.
        fresh = Loaders(sessionmaker=sessionmaker, dialect="postgresql")
        assert await fresh.product_by_id.load(1) is None
    finally:
        await engine.dispose()
