"""DB_POOLER=pgbouncer through a real PgBouncer in transaction mode (issue 15).

The HTTP read, write, limit and cache modules also run through one
(tests/conftest.py, PGBOUNCER_MODULES); this module checks what is particular
to the pooler: no session state reaches the next client, reads are bounded by
the per-transaction timeout too, the load run has no failed request while
transactions hop between server connections, and without DB_POOLER the
failure the issue reported is there.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from loaders.batch import fetch, read_connection
from schema.global_id import to_global_id
from tests.conftest import Database
from tests.factories import Factory
from tests.pgbouncer_support import running_pgbouncer
from tests.server.apps import serve

pytestmark = pytest.mark.parametrize("database", ["pgbouncer"], indirect=True)

PRODUCT = "query($id: ID!) { product(id: $id) { name priceCents category { name } } }"
CATALOG = """{ products(first: 5) { edges { node { name category { name }
  reviews(first: 2) { edges { node { rating author { name } } } } } } } }"""
REVIEW = "mutation($input: AddReviewInput!) { addReview(input: $input) { rating } }"
# Few server connections for many clients: consecutive transactions of one
# client connection land on different server connections all the time.
SCARCE = {"default_pool_size": "3", "max_db_connections": "3", "reserve_pool_size": "0"}


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_without_db_pooler_pgbouncer_refuses_the_startup_timeout(db: Database) -> None:
    # The first failure: statement_timeout as a startup parameter.
    async with serve(db, DB_POOLER="none", DB_STATEMENT_TIMEOUT_MS="5000") as api:
        response = await api.post("{ categories { name } }")
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_no_session_state_is_left_on_the_server_connection(
    db: Database, factory: Factory
) -> None:
    assert db.direct_url is not None
    await factory.product(name="Lamp")
    # One server connection: whatever a transaction left on it, the next client sees.
    with running_pgbouncer(db.direct_url, overrides={**SCARCE, "default_pool_size": "1"}) as one:
        async with serve(db, DATABASE_URL=one.url, DB_STATEMENT_TIMEOUT_MS="1234") as api:
            for _ in range(3):
                data = await api.data(CATALOG)
                assert data["products"]["edges"][0]["node"]["name"] == "Lamp"
            await api.services.engine.dispose()
        other = await asyncpg.connect(asyncpg_url(one.url), statement_cache_size=0)
        try:
            assert await other.fetchval("SHOW statement_timeout") == "0"
            assert await other.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
        finally:
            await other.close()


async def test_reads_are_bounded_by_the_per_transaction_timeout(db: Database) -> None:
    async with serve(db, DB_STATEMENT_TIMEOUT_MS="100") as api:
        sessionmaker = api.services.sessionmaker
        async with read_connection(sessionmaker) as connection:
            statement = select(func.pg_sleep(2))
            with pytest.raises(DBAPIError) as raised:
                await fetch(connection, statement, {})
        assert getattr(raised.value.orig, "sqlstate", None) == "57014"
        async with read_connection(sessionmaker) as connection:
            rows = await fetch(connection, select(func.current_setting("statement_timeout")), {})
        assert rows[0][0] == "100ms"


async def test_a_load_run_through_pgbouncer_has_no_failed_request(
    db: Database, factory: Factory
) -> None:
    assert db.direct_url is not None
    products = [await factory.product(name=f"P{i}") for i in range(10)]
    users = [await factory.user(email=f"u{i}@example.com") for i in range(31)]
    await factory.review(product_id=products[0], user_id=users[0], rating=5)
    with running_pgbouncer(db.direct_url, overrides=SCARCE) as scarce:
        # Latency, not correctness, grows with the queue on a busy machine: no
        # execution deadline, nor slow-operation lines, for this run.
        async with serve(
            db,
            DATABASE_URL=scarce.url,
            DB_POOL_SIZE="10",
            RATE_LIMIT_ENABLED="false",
            EXECUTION_TIMEOUT_MS="0",
            SLOW_OPERATION_MS="600000",
            GRAPHQL_EXECUTION="compiled",
        ) as api:
            tokens = [await api.token(f"u{i}@example.com") for i in range(1, 31)]
            ids = [to_global_id("Product", product) for product in products]
            reviewed = iter(tokens)
            limit = asyncio.Semaphore(100)
            rng = random.Random(15)

            async def one(i: int) -> Any:
                async with limit:
                    if i % 50 == 0:  # a write every 50 requests: 30 reviews
                        token = next(reviewed)
                        variables = {"input": {"productId": ids[1], "rating": 4, "body": "ok"}}
                        return await api.query(REVIEW, variables, token=token)
                    if i % 4:
                        return await api.query(PRODUCT, {"id": rng.choice(ids)})
                    return await api.query(CATALOG)

            answers = await asyncio.gather(*(one(i) for i in range(1500)))
    failed = [answer for answer in answers if "errors" in answer]
    assert failed == [], failed[:3]
    assert sum(1 for answer in answers if "addReview" in answer["data"]) == 30
