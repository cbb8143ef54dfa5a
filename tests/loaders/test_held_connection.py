"""One connection kept between an operation's batches (loaders/held_connection.py).

Counted by the pool's own `checkout` events on real PostgreSQL: a product page over
HTTP reads on fewer connections than it sends statements, and every connection is
back in the pool once it is answered. SQLite (no lean reads) reads as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loaders import Dialect, Loaders
from loaders.batch import operation_reads, read_connection
from loaders.held_connection import HeldConnection, held_connection, holding_connection
from schema.global_id import to_global_id
from server.database import create_engine
from server.settings import Settings
from tests.conftest import Api, Database
from tests.factories import Factory

PRODUCT_PAGE = """query($id: ID!) { product(id: $id) {
  name averageRating reviewCount category { name }
  reviews(first: 10) { edges { node { rating author { name } } } }
} }"""


def postgres_only(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("lean reads: PostgreSQL only")


class Checkouts:
    """Counts checkouts of `engine`'s pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.pool = engine.sync_engine.pool
        event.listen(self.pool, "checkout", self._checked_out)

    def _checked_out(self, *_args: Any) -> None:
        self.count += 1

    def remove(self) -> None:
        event.remove(self.pool, "checkout", self._checked_out)


async def test_a_product_page_reads_on_fewer_connections_than_statements(
    api: Api, factory: Factory, db: Database
) -> None:
    category = await factory.category(name="Lamps")
    product = await factory.product(name="Lamp", category_id=category)
    for n in range(3):
        author = await factory.user(name=f"Reader {n}")
        await factory.review(product_id=product, user_id=author, rating=4)
    variables = {"id": to_global_id("Product", product)}
    await api.data(PRODUCT_PAGE, variables)  # warm: the viewer and schema caches

    checkouts = Checkouts(api.services.engine)
    api.statements.clear()
    try:
        data = await api.data(PRODUCT_PAGE, variables)
    finally:
        checkouts.remove()

    assert data["product"]["category"] == {"name": "Lamps"}
    assert len(data["product"]["reviews"]["edges"]) == 3
    statements = len(api.statements)
    assert statements >= 4  # product; category, rating, reviews; authors
    if db.backend == "postgresql":
        # One connection per batch of the widest level, not one per statement.
        assert checkouts.count < statements, (checkouts.count, statements)
    assert api.services.engine.pool.checkedout() == 0


async def test_a_free_connection_is_taken_again_and_a_busy_one_is_not(db: Database) -> None:
    postgres_only(db)
    held = HeldConnection(db.engine)
    first = await held.take()
    second = await held.take()  # the first is busy: another from the pool
    assert first is not second
    await held.give_back(first, reusable=True)
    await held.give_back(second, reusable=True)  # one is idle already: to the pool
    assert second.closed
    assert not first.closed
    again = await held.take()
    assert again is first
    await held.give_back(again, reusable=True)
    await held.end()
    assert first.closed
    assert db.engine.pool.checkedout() == 0


async def test_a_failed_batch_s_connection_and_a_late_one_go_back_to_the_pool(
    db: Database,
) -> None:
    postgres_only(db)
    held = HeldConnection(db.engine)
    failed = await held.take()
    await held.give_back(failed, reusable=False)  # maybe cut mid-statement: never reused
    assert failed.closed
    late = await held.take()
    await held.end()
    await held.give_back(late, reusable=True)  # its operation is over: closed
    assert late.closed
    assert db.engine.pool.checkedout() == 0


async def test_an_invalidated_connection_is_not_handed_out_again(db: Database) -> None:
    postgres_only(db)
    held = HeldConnection(db.engine)
    connection = await held.take()
    await held.give_back(connection, reusable=True)
    await connection.invalidate()
    fresh = await held.take()
    assert fresh is not connection
    assert not fresh.invalidated
    await held.give_back(fresh, reusable=True)
    await held.end()
    assert db.engine.pool.checkedout() == 0


async def test_batches_share_the_kept_connection_only_inside_the_operation(
    db: Database,
) -> None:
    postgres_only(db)
    used: list[AsyncConnection] = []

    async def batch() -> None:
        async with read_connection(db.sessionmaker) as connection:
            used.append(connection)
            await asyncio.sleep(0)

    async with operation_reads(db.sessionmaker):
        assert held_connection(db.engine) is not None
        await batch()
        await asyncio.create_task(batch())  # a batch's task sees its operation's connection
        await asyncio.gather(batch(), batch())
    assert held_connection(db.engine) is None
    await batch()

    assert used[0] is used[1]  # one after the other: the same connection
    assert used[2] is not used[3]  # side by side: two, one of them the kept one
    assert used[0] in used[2:4]
    assert used[4] not in used[:4]  # outside the operation: a connection of its own
    assert db.engine.pool.checkedout() == 0


async def test_loaders_inside_an_operation_read_what_they_read_outside(
    db: Database, factory: Factory, dialect: Dialect
) -> None:
    product = await factory.product(name="Lamp")
    author = await factory.user(name="Ann")
    await factory.review(product_id=product, user_id=author, rating=5)

    async def read() -> Any:
        loaders = Loaders(sessionmaker=db.sessionmaker, dialect=dialect)
        found = await loaders.product_by_id.load(product)
        users = await loaders.user_by_id.load_many([author, 10**9])
        return found, users

    outside = await read()
    async with holding_connection(db.engine):
        inside = await read()
    assert repr(inside) == repr(outside)
    assert db.engine.pool.checkedout() == 0


async def test_with_no_connection_to_spare_a_batch_s_connection_goes_back_to_the_pool(
    db: Database,
) -> None:
    """Kept idle, it would keep a sibling batch (or another request) waiting for the
    pool: up to its timeout when the pool has nothing else to give."""
    postgres_only(db)
    engine = create_engine(
        Settings.from_env({"DATABASE_URL": db.url, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    )
    try:
        held = HeldConnection(engine)
        first = await held.take()
        sibling = asyncio.create_task(held.take())  # the pool's one connection is out
        await asyncio.sleep(0.05)
        assert not sibling.done()
        await held.give_back(first, reusable=True)
        second = await asyncio.wait_for(sibling, 5)
        assert first.closed
        await held.give_back(second, reusable=True)
        await held.end()
        assert engine.sync_engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
