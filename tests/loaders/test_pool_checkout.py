"""A lean read's checkout without a greenlet hop (loaders/pool_checkout.py), on real PostgreSQL.

Greenlet hops are counted by wrapping the asyncio extension's own `greenlet_spawn`:
an idle pooled connection goes out and back with none, everything that needs I/O
(opening, reconnecting a recycled connection, a pre-ping, a rollback) takes the
usual path and still works.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import engine as async_engine_module
from sqlalchemy.util.concurrency import greenlet_spawn

from loaders import prepared
from loaders.pool_checkout import checkin, checkout
from server.database import create_engine
from server.settings import Settings
from tests.conftest import Database


class Hops:
    """Counts the asyncio extension's greenlet hops while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = async_engine_module.greenlet_spawn

        async def counting(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(fn, *args, **kwargs)

        monkeypatch.setattr(async_engine_module, "greenlet_spawn", counting)


@pytest.fixture
async def engine_of(db: Database) -> AsyncIterator[Callable[..., AsyncEngine]]:
    if db.backend != "postgresql":
        pytest.skip("lean reads: PostgreSQL only")
    engines: list[AsyncEngine] = []

    def make(**env: str) -> AsyncEngine:
        engine = create_engine(Settings.from_env({"DATABASE_URL": db.url, **env}))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    connection = await checkout(engine)
    try:
        rows = await prepared.fetch(connection, select(func.pg_backend_pid()), {})
        return int(rows[0][0])
    finally:
        await checkin(connection)


async def test_an_idle_connection_goes_out_and_back_without_a_hop(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of()
    first = await backend_pid(engine)  # opened: the usual path
    hops = Hops(monkeypatch)
    assert [await backend_pid(engine) for _ in range(3)] == [first] * 3
    assert hops.count == 0
    assert engine.sync_engine.pool.checkedout() == 0


async def test_a_connection_past_its_recycle_age_is_replaced(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(DB_POOL_RECYCLE="1")
    first = await backend_pid(engine)
    await asyncio.sleep(1.1)
    hops = Hops(monkeypatch)
    second = await backend_pid(engine)  # the sync checkout could not reconnect it
    assert second != first
    assert hops.count == 1  # the usual path opened the new one
    assert engine.sync_engine.pool.checkedout() == 0
    assert engine.sync_engine.pool.checkedin() == 1


async def test_with_a_pre_ping_every_checkout_takes_the_usual_path(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(DB_POOL_PRE_PING="true")
    first = await backend_pid(engine)
    hops = Hops(monkeypatch)
    assert await backend_pid(engine) == first
    assert hops.count == 1  # the checkout (and its ping); the check-in needed none


async def test_a_connection_in_a_transaction_is_rolled_back_on_its_way_in(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of()
    await backend_pid(engine)
    connection = await checkout(engine)
    await connection.begin()
    await connection.exec_driver_sql("SELECT 1")
    hops = Hops(monkeypatch)
    await checkin(connection)
    assert hops.count == 1  # the rollback needs the driver: the usual path
    assert connection.closed
    again = await checkout(engine)
    assert not again.in_transaction()
    await checkin(again)
    assert engine.sync_engine.pool.checkedout() == 0


async def test_an_invalidated_connection_is_opened_again_on_the_usual_path(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of()
    first = await backend_pid(engine)
    connection = await checkout(engine)
    await connection.invalidate()  # as after a lost connection: nothing left to reuse
    await checkin(connection)
    hops = Hops(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no driver coroutine left unawaited
        second = await backend_pid(engine)
    assert second != first
    assert hops.count == 1
    assert await backend_pid(engine) == second
    assert hops.count == 1  # and then it is idle like any other
    assert engine.sync_engine.pool.checkedout() == 0


async def test_an_overflow_connection_returned_to_a_full_pool_is_closed(
    engine_of: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing it is I/O: done without a greenlet it would fail inside the pool, which
    logs and drops the driver's connection unclosed (ResourceWarning, a server
    session left open until collected)."""
    engine = engine_of(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="1")
    await backend_pid(engine)
    kept = await checkout(engine)
    overflow = await checkout(engine)
    driver = overflow.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    hops = Hops(monkeypatch)
    await checkin(kept)  # the pool has room: kept, no hop
    assert hops.count == 0
    await checkin(overflow)  # the pool is full: closed on the usual path
    assert hops.count == 1
    assert driver.is_closed()
    pool = engine.sync_engine.pool
    assert (pool.checkedout(), pool.checkedin(), pool.overflow()) == (0, 1, 0)


async def test_a_connection_goes_back_to_its_own_pool_after_a_dispose(
    engine_of: Callable[..., AsyncEngine],
) -> None:
    """`dispose()` gives the engine a new pool; connections still out return to the
    old one, which closes what it has no room for (I/O: the usual path)."""
    engine = engine_of(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="1")
    await backend_pid(engine)
    kept = await checkout(engine)
    overflow = await checkout(engine)
    driver = overflow.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    old_pool = engine.sync_engine.pool
    await engine.dispose(close=False)
    assert engine.sync_engine.pool is not old_pool
    await checkin(kept)
    await checkin(overflow)
    assert driver.is_closed()
    assert (old_pool.checkedout(), old_pool.checkedin()) == (0, 1)  # type: ignore[attr-defined]
    await greenlet_spawn(old_pool.dispose)  # `kept`: closed with the old pool
