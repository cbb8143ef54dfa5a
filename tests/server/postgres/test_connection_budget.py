"""The startup check of PostgreSQL's connection budget (server/postgres/connection_budget.py)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from server.postgres.connection_budget import ConnectionBudget
from server.settings import Settings
from tests.conftest import Database
from tests.server.apps import serve


def budget_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "connection budget" in r.getMessage()]


async def max_connections(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(text("SHOW max_connections"))).scalar_one())


async def test_a_host_over_its_share_is_warned_once_with_the_arithmetic(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if db.backend != "postgresql":
        pytest.skip("max_connections is PostgreSQL's")
    limit = await max_connections(db)
    pool = limit // 2  # x 2 workers: the whole of max_connections, over a 0.5 share
    with caplog.at_level(logging.WARNING, logger="storefront.database"):
        async with serve(
            db,
            DB_POOL_SIZE=str(pool),
            DB_MAX_OVERFLOW="3",
            WEB_CONCURRENCY="2",
            DB_CONNECTION_SHARE="0.5",
        ) as api:
            await api.data("{ categories { name } }")
    lines = budget_lines(caplog)
    wanted = (pool + 3) * 2
    assert lines == [
        f"connection budget exceeded: (DB_POOL_SIZE {pool} + DB_MAX_OVERFLOW 3) x 2 workers"
        f" = {wanted} connections, over DB_CONNECTION_SHARE 0.5 x max_connections {limit}"
        f" = {limit // 2}: lower the pool, or put PgBouncer in front (DB_POOLER=pgbouncer)"
    ]


async def test_a_host_within_its_share_is_not_warned(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if db.backend != "postgresql":
        pytest.skip("max_connections is PostgreSQL's")
    limit = await max_connections(db)
    pool = limit // 4  # x 2 workers: exactly the 0.5 share
    with caplog.at_level(logging.WARNING, logger="storefront.database"):
        async with serve(
            db,
            DB_POOL_SIZE=str(pool),
            DB_MAX_OVERFLOW="0",
            WEB_CONCURRENCY="2",
            DB_CONNECTION_SHARE="0.5",
        ):
            pass
    assert budget_lines(caplog) == []


def test_the_defaults_fit_the_readme_s_worked_example() -> None:
    # README: 3 instances x 2 workers, max_connections 100, 90 of it for Storefront,
    # a third of that (DB_CONNECTION_SHARE=0.3) per host.
    defaults = Settings.from_env({"WEB_CONCURRENCY": "2"})
    host = ConnectionBudget(
        pool_size=defaults.db_pool_size,
        max_overflow=defaults.db_max_overflow,
        workers=2,
        max_connections=100,
        share=0.3,
    )
    assert (host.wanted, host.allowed, host.exceeded) == (24, 30, False)
    before = ConnectionBudget(
        pool_size=20, max_overflow=20, workers=2, max_connections=100, share=0.3
    )
    assert (before.wanted, before.exceeded) == (80, True)
